// Symbol visibility for the shared library: everything is hidden unless marked ACT_EXPORT.
#ifndef ACTIVATION_EXPORT_HPP_
#define ACTIVATION_EXPORT_HPP_

#if defined(ACT_BUILDING_LIBRARY)
#define ACT_EXPORT [[gnu::visibility("default")]]
#else
#define ACT_EXPORT
#endif

#endif  // ACTIVATION_EXPORT_HPP_
