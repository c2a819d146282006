// Boost.URL's compiled part, built once for the whole program (Boost 1.81 ships it as source).
#include <boost/url/src.hpp>
