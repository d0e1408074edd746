# hosts.cmake - tests across hosts, emulated with Linux network namespaces: a fabric on three
# namespaces joined by a bridge loses the host of one gossip seed mid-run and loses nothing.
# Needs root; otherwise the test reports SKIP (exit 77). Included from tests/CMakeLists.txt.

add_test(NAME netns COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/test_netns.sh
                            $<TARGET_FILE:weft_cli> $<TARGET_FILE:weft-archiver>)
# Alone: it creates network namespaces and links and ends TCP connections; a test of the
# loopback fabric that overlapped it was seen losing its peers.
set_tests_properties(netns PROPERTIES TIMEOUT 180 SKIP_RETURN_CODE 77 RUN_SERIAL TRUE)
