# json_mp.cmake - the test of tools/common/json_mp (JSON <-> msgpack for the command line),
# included from tests/CMakeLists.txt.
add_executable(test_json_mp ${CMAKE_CURRENT_SOURCE_DIR}/test_json_mp.c)
target_include_directories(test_json_mp PRIVATE ${CMAKE_SOURCE_DIR}/tests)
target_link_libraries(test_json_mp PRIVATE weft_tools_common)
add_test(NAME json_mp COMMAND test_json_mp)
set_tests_properties(json_mp PROPERTIES TIMEOUT 60)
