// iosshim.cpp: stands in for GCC 13's libstdc++ symbol std::ios_base_library_init() (GLIBCXX_3.4.32),
// which libLibTorchSharp.so (built with GCC 13) names but this system's libstdc++ (GCC 12) lacks.
//
// In GCC 13 <iostream> no longer defines a static ios_base::Init per translation unit; instead it references
// ios_base_library_init() so that the object links against a libstdc++ that initializes cout/cin itself.
// The reference carries no relocation (nothing calls it), so an empty definition suffices; the static
// ios_base::Init below makes sure the standard streams are constructed before libLibTorchSharp's own
// initializers run (this library is one of its DT_NEEDED entries, so its constructors run first).
#include <ios>

namespace std
{
    __attribute__((visibility("default"))) void ios_base_library_init() {}
}

static std::ios_base::Init s_iostreams;
