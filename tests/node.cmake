# Node tests: in-process publish/subscribe, FETCH, config.
add_executable(test_node_inproc test_node_inproc.c)
target_include_directories(test_node_inproc PRIVATE ${CMAKE_SOURCE_DIR}/tests)
target_link_libraries(test_node_inproc weft_static)
add_test(NAME node_inproc COMMAND test_node_inproc)
set_tests_properties(node_inproc PROPERTIES TIMEOUT 120)

# Multi-process fabric: real nodes in separate processes.
add_executable(fabric_peer fabric_peer.c)
target_link_libraries(fabric_peer weft_static)
add_executable(test_fabric test_fabric.c)
target_include_directories(test_fabric PRIVATE ${CMAKE_SOURCE_DIR}/tests)
target_link_libraries(test_fabric weft_static PkgConfig::MSGPACK)
add_test(NAME fabric COMMAND test_fabric $<TARGET_FILE:fabric_peer>)
set_tests_properties(fabric PROPERTIES TIMEOUT 180)

# Hostile input on the SUB and control endpoints.
add_executable(test_hostile test_hostile.c)
target_include_directories(test_hostile PRIVATE ${CMAKE_SOURCE_DIR}/tests)
target_link_libraries(test_hostile weft_static)
add_test(NAME hostile COMMAND test_hostile)
set_tests_properties(hostile PROPERTIES TIMEOUT 120)

# The command line across processes.
add_test(NAME cli COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/test_cli.sh $<TARGET_FILE:weft_cli>)
set_tests_properties(cli PROPERTIES TIMEOUT 120)

# Failing handlers: retries, dead letters, breaker, REDELIVER.
add_executable(test_node_dlq test_node_dlq.c)
target_include_directories(test_node_dlq PRIVATE ${CMAKE_SOURCE_DIR}/tests)
target_link_libraries(test_node_dlq weft_static PkgConfig::MSGPACK)
add_test(NAME node_dlq COMMAND test_node_dlq)
set_tests_properties(node_dlq PROPERTIES TIMEOUT 120)

# At-least-once subscriptions: gap repair from the outbox, in seq order.
add_executable(test_node_repair test_node_repair.c)
target_include_directories(test_node_repair PRIVATE ${CMAKE_SOURCE_DIR}/tests)
target_link_libraries(test_node_repair weft_static)
add_test(NAME node_repair COMMAND test_node_repair)
set_tests_properties(node_repair PROPERTIES TIMEOUT 120)
