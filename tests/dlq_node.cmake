# The DLQ as a separate process (weft-dlq) with a fake subscriber node in the test: PUT,
# redelivery, backoff, parking, RETRY, PURGE, LIST, INFO, kill -9, malformed requests.
add_executable(test_dlq_node test_dlq_node.c)
target_include_directories(test_dlq_node PRIVATE ${CMAKE_SOURCE_DIR}/tests)
target_link_libraries(test_dlq_node weft_static PkgConfig::MSGPACK)
add_test(NAME dlq_node COMMAND test_dlq_node $<TARGET_FILE:weft-dlq>)
set_tests_properties(dlq_node PROPERTIES TIMEOUT 120)
# The DLQ from the command line: weft sub --fail, weft dlq list/show/retry/purge/stats.
add_test(NAME dlq_cli COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/test_dlq_cli.sh
                              $<TARGET_FILE:weft_cli> $<TARGET_FILE:weft-dlq>)
set_tests_properties(dlq_cli PROPERTIES TIMEOUT 60)
