// The one include of Boost.Process v2 for this component (header-only in Boost 1.81; never
// include boost/process/v2/src.hpp). Internal; not synchronized.
#pragma once

// Use std::filesystem instead of boost::filesystem, a compiled library we do not link.
#ifndef BOOST_PROCESS_USE_STD_FS
#define BOOST_PROCESS_USE_STD_FS 1
#endif

// Boost 1.81's Process v2 still names boost::optional, boost::decay and boost::is_convertible
// in that mode but only includes them through boost::filesystem's headers.
// clang-format off
#include <boost/optional.hpp>
#include <boost/type_traits/decay.hpp>
#include <boost/type_traits/is_convertible.hpp>

#include <boost/process/v2/process.hpp>
// clang-format on
