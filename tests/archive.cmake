# archive.cmake - tests of the archiver's storage layer (src/archive_store.c): LMDB layout,
# indexes, scans, map growth, retention, crash safety. Included from tests/CMakeLists.txt.

add_executable(test_archive_store ${CMAKE_CURRENT_SOURCE_DIR}/test_archive_store.c)
target_include_directories(test_archive_store PRIVATE ${CMAKE_SOURCE_DIR}/src ${CMAKE_SOURCE_DIR}/tests)
target_link_libraries(test_archive_store PRIVATE weft_static PkgConfig::LMDB)
add_test(NAME archive_store COMMAND test_archive_store)
set_tests_properties(archive_store PROPERTIES TIMEOUT 120)
