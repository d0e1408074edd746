# codec.cmake - unit tests of the envelope codec, the msgpack guard and the outbox, and (with
# WEFT_FUZZ=ON) the libFuzzer target for the envelope decoder. Included from
# tests/CMakeLists.txt.

foreach(t mp_guard outbox)
  add_executable(test_${t} ${CMAKE_CURRENT_SOURCE_DIR}/test_${t}.c)
  target_include_directories(test_${t} PRIVATE ${CMAKE_SOURCE_DIR}/src ${CMAKE_SOURCE_DIR}/tests)
  target_link_libraries(test_${t} PRIVATE weft_static PkgConfig::MSGPACK)
  add_test(NAME ${t} COMMAND test_${t})
  set_tests_properties(${t} PROPERTIES TIMEOUT 60)
endforeach()

# The envelope test compiles the codec in with WEFT_ENVELOPE_REFERENCE, which adds the
# reference decoder (msgpack-c based) its differential tests compare the direct decoder with.
add_executable(test_envelope ${CMAKE_CURRENT_SOURCE_DIR}/test_envelope.c
               ${CMAKE_SOURCE_DIR}/src/envelope.c
               ${CMAKE_SOURCE_DIR}/src/mp_guard.c
               ${CMAKE_SOURCE_DIR}/src/error.c)
target_include_directories(test_envelope PRIVATE ${CMAKE_SOURCE_DIR}/include
                           ${CMAKE_SOURCE_DIR}/src ${CMAKE_SOURCE_DIR}/tests)
target_compile_definitions(test_envelope PRIVATE WEFT_ENVELOPE_REFERENCE
                           WEFT_FUZZ_CORPUS="${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus_envelope")
target_link_libraries(test_envelope PRIVATE PkgConfig::MSGPACK)
add_test(NAME envelope COMMAND test_envelope)
set_tests_properties(envelope PROPERTIES TIMEOUT 120)

if(WEFT_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "WEFT_FUZZ needs clang (libFuzzer); configure with CC=clang")
  endif()
  # The codec sources are compiled straight into the target so they carry the fuzzer's
  # coverage and sanitizer instrumentation whatever flags the weft library was built with.
  set(WEFT_FUZZ_FLAGS -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
                      -fno-omit-frame-pointer)
  add_executable(fuzz_envelope
                 ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_envelope.c
                 ${CMAKE_SOURCE_DIR}/src/envelope.c
                 ${CMAKE_SOURCE_DIR}/src/mp_guard.c
                 ${CMAKE_SOURCE_DIR}/src/error.c)
  target_include_directories(fuzz_envelope PRIVATE ${CMAKE_SOURCE_DIR}/include ${CMAKE_SOURCE_DIR}/src)
  target_compile_definitions(fuzz_envelope PRIVATE WEFT_ENVELOPE_REFERENCE)
  target_compile_options(fuzz_envelope PRIVATE ${WEFT_FUZZ_FLAGS})
  target_link_options(fuzz_envelope PRIVATE ${WEFT_FUZZ_FLAGS})
  target_link_libraries(fuzz_envelope PRIVATE PkgConfig::MSGPACK)

  set(WEFT_FUZZ_SECONDS 30 CACHE STRING "Seconds the fuzz-envelope target runs the fuzzer")
  add_custom_target(fuzz-envelope
                    COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/run-fuzz.sh ${WEFT_FUZZ_SECONDS}
                            $<TARGET_FILE:fuzz_envelope>
                    DEPENDS fuzz_envelope
                    USES_TERMINAL
                    COMMENT "Fuzzing the envelope decoder for ${WEFT_FUZZ_SECONDS} s")
  # Replays the seed corpus only (no mutation): quick, and catches a regression on the seeds.
  add_test(NAME fuzz_envelope_seeds
           COMMAND fuzz_envelope -runs=0 ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus_envelope)
  set_tests_properties(fuzz_envelope_seeds PROPERTIES TIMEOUT 60)
endif()
