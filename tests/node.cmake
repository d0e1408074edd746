# Node tests: in-process publish/subscribe, FETCH, config.
add_executable(test_node_inproc test_node_inproc.c)
target_include_directories(test_node_inproc PRIVATE ${CMAKE_SOURCE_DIR}/tests)
target_link_libraries(test_node_inproc weft_static)
add_test(NAME node_inproc COMMAND test_node_inproc)
set_tests_properties(node_inproc PROPERTIES TIMEOUT 120)
