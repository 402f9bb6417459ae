# Compiler flags shared by every Weft target, and the sanitizer switch.
#
# Frame pointers stay on in every build: the watchdog walks them from a signal handler
# (async-signal-safe, no unwinder), and they cost about 1% here.
add_compile_options(-Wall -Wextra -fno-omit-frame-pointer -mno-omit-leaf-frame-pointer)
if(CMAKE_BUILD_TYPE STREQUAL "Release")
    # Line tables only: symbolized blocking reports get file:line without a debug build.
    add_compile_options(-g1)
endif()
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    add_compile_options(-fno-semantic-interposition)
endif()

if(WEFT_SANITIZE)
    string(REPLACE ";" "," _weft_san "${WEFT_SANITIZE}")
    if(_weft_san MATCHES "thread" AND _weft_san MATCHES "address")
        message(FATAL_ERROR "WEFT_SANITIZE: 'thread' cannot be combined with 'address'")
    endif()
    add_compile_options(-fsanitize=${_weft_san} -fno-sanitize-recover=all)
    add_link_options(-fsanitize=${_weft_san})
    add_compile_definitions(WEFT_SANITIZER_BUILD=1)
    set(WEFT_SANITIZER_FLAGS "${_weft_san}")
else()
    set(WEFT_SANITIZER_FLAGS "none")
endif()

# Installed programs find the weft libraries next to them (bin/../lib).
set(CMAKE_INSTALL_RPATH "$ORIGIN/../${CMAKE_INSTALL_LIBDIR}")

# weft_library(NAME SOURCES...): a shared library `weft_NAME` with alias `weft::NAME`.
# Shared, so that the server and every dlopen'ed plugin see one runtime (one set of hubs).
function(weft_library name)
    add_library(weft_${name} SHARED ${ARGN})
    add_library(weft::${name} ALIAS weft_${name})
    set_target_properties(weft_${name} PROPERTIES
        OUTPUT_NAME weft_${name}
        VERSION ${PROJECT_VERSION}
        SOVERSION ${PROJECT_VERSION_MAJOR}.${PROJECT_VERSION_MINOR}
        EXPORT_NAME ${name})
    # Calls inside a library bind directly (no PLT hop on the switch path). Not under TSan:
    # there a call of libweft_core's own to a libc function it patches (a std::mutex's
    # pthread_mutex_lock) must reach TSan's interceptor first, as any other caller's does, or
    # TSan would not see the lock and report races that it guards against.
    if(NOT WEFT_SANITIZE MATCHES "thread")
        target_link_options(weft_${name} PRIVATE -Wl,-Bsymbolic-functions)
    endif()
    target_include_directories(weft_${name} PUBLIC
        $<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/include>
        $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
    # The SDK: every module library and its public headers are installed and exported.
    install(TARGETS weft_${name} EXPORT weftTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
    # Engine hooks (include/weft/<module>/internal/) serve the other modules only: a plugin
    # built with the SDK cannot include them.
    if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/include)
        install(DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}/include/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
            PATTERN internal EXCLUDE)
    endif()
endfunction()
