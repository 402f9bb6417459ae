# weft_add_plugin(NAME SOURCES... [LIBS ...]): builds a Weft handler plugin, a shared object that
# the weft server loads with --plugin or [[plugin]] path. Used in-tree and by the installed SDK.
# The plugin's build signature (compiler, standard library, Weft version, sanitizers) comes from
# weft/plugin.hpp, so a plugin built against another Weft or toolchain is refused at load time.
function(weft_add_plugin name)
    cmake_parse_arguments(P "" "" "SOURCES;LIBS" ${ARGN})
    if(NOT P_SOURCES)
        set(P_SOURCES ${P_UNPARSED_ARGUMENTS})
    endif()
    add_library(${name} MODULE ${P_SOURCES})
    set_target_properties(${name} PROPERTIES
        PREFIX "lib"
        CXX_STANDARD 20
        CXX_STANDARD_REQUIRED ON
        CXX_VISIBILITY_PRESET hidden
        VISIBILITY_INLINES_HIDDEN ON)
    target_link_libraries(${name} PRIVATE weft::plugin_api ${P_LIBS})
endfunction()
