# monitor.cmake - tests of the operator's view of the fabric, included from tests/CMakeLists.txt:
# the fabric model fed with hand-built heartbeats (fabric_model), the exporter's text format
# (prom), weft-top in batch mode and `weft stat` against real load (top), weft-top's screen
# driven through tmux (top_tmux), and the Prometheus exporter over HTTP (exporter).
add_executable(test_fabric_model ${CMAKE_CURRENT_SOURCE_DIR}/test_fabric_model.c)
target_include_directories(test_fabric_model PRIVATE ${CMAKE_SOURCE_DIR}/tests)
target_link_libraries(test_fabric_model PRIVATE weft_tools_common)
add_test(NAME fabric_model COMMAND test_fabric_model)
set_tests_properties(fabric_model PROPERTIES TIMEOUT 60)

# weft-top --batch and `weft stat` against publishers at known rates; a killed node goes down.
add_test(NAME top COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/test_top.sh $<TARGET_FILE:weft_cli>
                          $<TARGET_FILE:weft_top>)
# The monitor tests run alone: they measure rates and liveness by the clock. (Observer nodes
# that saw none of the fabric when these overlapped other tests were the victims of a stray
# message stopping czmq's gossip service on a reused port; discovery.c now survives that.)
set_tests_properties(top PROPERTIES TIMEOUT 120 RUN_SERIAL TRUE)

# weft-top's screen through tmux (skipped when tmux is missing).
add_test(NAME top_tmux COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/test_top_tmux.sh
                               $<TARGET_FILE:weft_top>)
set_tests_properties(top_tmux PROPERTIES TIMEOUT 90 RUN_SERIAL TRUE)

# The Prometheus exporter: text format, counters, histogram, health endpoints.
add_test(NAME exporter COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/test_exporter.sh
                               $<TARGET_FILE:weft_cli> $<TARGET_FILE:weft_exporter>)
set_tests_properties(exporter PROPERTIES TIMEOUT 90 RUN_SERIAL TRUE)

# The exporter's Prometheus text format, from hand-built heartbeats.
add_executable(test_prom ${CMAKE_CURRENT_SOURCE_DIR}/test_prom.c
                         ${CMAKE_SOURCE_DIR}/nodes/exporter/prom.c)
target_include_directories(test_prom PRIVATE ${CMAKE_SOURCE_DIR}/tests
                                             ${CMAKE_SOURCE_DIR}/nodes/exporter)
target_link_libraries(test_prom PRIVATE weft_tools_common)
add_test(NAME prom COMMAND test_prom)
set_tests_properties(prom PROPERTIES TIMEOUT 60)
