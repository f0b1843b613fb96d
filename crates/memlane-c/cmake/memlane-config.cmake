# CMake package file of memlane's C API, installed by
# crates/memlane-c/install.sh PREFIX as PREFIX/lib/cmake/memlane/.
#
#     find_package(memlane REQUIRED)       # with -DCMAKE_PREFIX_PATH=PREFIX
#     target_link_libraries(app PRIVATE memlane::memlane)          # shared
#     target_link_libraries(app PRIVATE memlane::memlane_static)   # static
get_filename_component(_memlane_prefix "${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)

if(NOT TARGET memlane::memlane)
    add_library(memlane::memlane SHARED IMPORTED)
    set_target_properties(memlane::memlane PROPERTIES
        IMPORTED_LOCATION "${_memlane_prefix}/lib/libmemlane_c.so"
        INTERFACE_INCLUDE_DIRECTORIES "${_memlane_prefix}/include")
endif()

if(NOT TARGET memlane::memlane_static)
    add_library(memlane::memlane_static STATIC IMPORTED)
    # The system libraries Rust's standard library needs on Linux.
    set_target_properties(memlane::memlane_static PROPERTIES
        IMPORTED_LOCATION "${_memlane_prefix}/lib/libmemlane_c.a"
        INTERFACE_INCLUDE_DIRECTORIES "${_memlane_prefix}/include"
        INTERFACE_LINK_LIBRARIES "gcc_s;util;rt;pthread;m;dl")
endif()

unset(_memlane_prefix)
