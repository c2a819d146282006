"""Framing: encode/decode, partial reads, several frames per read, the 16 MiB limit."""

import json
import struct
import unittest

from giskard_worker_shim import protocol
from giskard_worker_shim.protocol import (MAX_FRAME_BYTES, FrameDecoder, FrameTooLarge,
                                          ProtocolError, encode_frame)


def frame(payload):
    return struct.pack(">I", len(payload)) + payload


class EncodeTest(unittest.TestCase):
    def test_length_prefix_and_compact_utf8(self):
        data = encode_frame({"type": "heartbeat", "note": "héllo"})
        payload = '{"type":"heartbeat","note":"héllo"}'.encode("utf-8")
        self.assertEqual(data, struct.pack(">I", len(payload)) + payload)

    def test_nan_is_refused(self):
        with self.assertRaises(ValueError):
            encode_frame({"type": "reply", "x": float("nan")})

    def test_too_large_is_refused_before_sending(self):
        with self.assertRaises(FrameTooLarge):
            encode_frame({"type": "reply", "blob": "x" * MAX_FRAME_BYTES})

    def test_largest_allowed_frame_round_trips(self):
        overhead = len(protocol.encode_json({"type": "r", "b": ""}))
        message = {"type": "r", "b": "y" * (MAX_FRAME_BYTES - overhead)}
        data = encode_frame(message)
        self.assertEqual(len(data), 4 + MAX_FRAME_BYTES)
        self.assertEqual(FrameDecoder().feed(data), [message])


class DecodeTest(unittest.TestCase):
    def test_byte_by_byte(self):
        messages = [{"type": "request", "id": "r%d" % i, "method": "ping", "params": {}}
                    for i in range(3)]
        data = b"".join(encode_frame(m) for m in messages)
        decoder, seen = FrameDecoder(), []
        for i in range(len(data)):
            seen += decoder.feed(data[i:i + 1])
        self.assertEqual(seen, messages)
        self.assertEqual(decoder.pending_bytes, 0)

    def test_several_frames_and_a_partial_one_in_one_read(self):
        a, b = {"type": "a"}, {"type": "b", "n": 1}
        data = encode_frame(a) + encode_frame(b)
        decoder = FrameDecoder()
        self.assertEqual(decoder.feed(data + data[:6]), [a, b])
        self.assertEqual(decoder.pending_bytes, 6)
        self.assertEqual(decoder.feed(data[6:]), [a, b])

    def test_announced_length_over_the_limit(self):
        decoder = FrameDecoder()
        with self.assertRaisesRegex(ProtocolError, "16777217"):
            decoder.feed(struct.pack(">I", MAX_FRAME_BYTES + 1))

    def test_limit_is_checked_before_the_payload_arrives(self):
        decoder = FrameDecoder(max_frame_bytes=10)
        self.assertEqual(decoder.feed(frame(b'{"type":"a"}')[:3]), [])
        with self.assertRaises(ProtocolError):
            decoder.feed(b"\x0b")  # completes the header: 11 > 10

    def test_messages_before_a_bad_frame_are_delivered_first(self):
        decoder = FrameDecoder()
        good = {"type": "welcome", "protocol": 1}
        self.assertEqual(decoder.feed(encode_frame(good) + frame(b"oops")), [good])
        self.assertTrue(decoder.has_error)
        with self.assertRaises(ProtocolError):
            decoder.feed(b"")

    def test_malformed_payloads(self):
        for payload in (b"", b"not json", b"[1,2]", b'{"no":"type"}', b'{"type":3}',
                        b'\xff\xfe{"type":"a"}', b'{"type":"a","x":NaN}'):
            with self.subTest(payload=payload), self.assertRaises(ProtocolError):
                FrameDecoder().feed(frame(payload))

    def test_unicode_survives(self):
        message = {"type": "reply", "id": "r1", "result": {"text": "日本語 ✓ \u0000"}}
        self.assertEqual(FrameDecoder().feed(encode_frame(message)), [message])
        self.assertEqual(json.loads(encode_frame(message)[4:].decode("utf-8")), message)


class ConstructorsTest(unittest.TestCase):
    def test_hello_fields(self):
        managed = protocol.hello("w", {"pid": 1}, token="t")
        self.assertEqual(managed, {"type": "hello", "protocol": 1, "workerId": "w",
                                   "reconnect": False, "token": "t", "env": {"pid": 1}})
        unmanaged = protocol.hello("w", {}, name="n", reconnect=True)
        self.assertNotIn("token", unmanaged)
        self.assertEqual(unmanaged["name"], "n")
        self.assertIs(unmanaged["reconnect"], True)

    def test_error_from_exception(self):
        try:
            raise KeyError("k")
        except KeyError as e:
            error = protocol.error_from_exception(e)
        self.assertEqual(error["type"], "KeyError")
        self.assertEqual(error["message"], "'k'")
        self.assertIn("raise KeyError", error["traceback"])


if __name__ == "__main__":
    unittest.main()
