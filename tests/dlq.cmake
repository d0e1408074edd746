# dlq.cmake - tests of the DLQ's storage layer (src/dlq_store.c): letter records, idempotent
# PUT, state changes and the retry index, counts, due, filtered and paged listing, delete, lock
# and format checks, damaged records, map growth, crash safety. Included from
# tests/CMakeLists.txt.

add_executable(test_dlq_store ${CMAKE_CURRENT_SOURCE_DIR}/test_dlq_store.c)
target_include_directories(test_dlq_store PRIVATE ${CMAKE_SOURCE_DIR}/src ${CMAKE_SOURCE_DIR}/tests)
target_link_libraries(test_dlq_store PRIVATE weft_static PkgConfig::LMDB)
add_test(NAME dlq_store COMMAND test_dlq_store)
set_tests_properties(dlq_store PROPERTIES TIMEOUT 60)
