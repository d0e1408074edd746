# The chaos suite: archiver, DLQ, an at-least-once subscriber and publishers as separate
# processes, killed with SIGKILL at random moments and restarted under load; the archive, the
# subscriber's log and the DLQ must then account for every event (tests/chaos/test_chaos.c).
# Part of the default suite unless configured with -DWEFT_CHAOS=OFF (tests/CMakeLists.txt);
# labelled chaos, so ctest -L chaos runs it alone and ctest -LE chaos skips it. One run takes
# about a minute (more under the sanitizers); WEFT_CHAOS_SEED=N replays a kill schedule,
# WEFT_CHAOS_ROUNDS and WEFT_CHAOS_RATE change its size.
add_executable(chaos_pub chaos/chaos_pub.c)
target_link_libraries(chaos_pub weft_static)
add_executable(chaos_sub chaos/chaos_sub.c)
target_link_libraries(chaos_sub weft_static)
add_executable(test_chaos chaos/test_chaos.c)
target_include_directories(test_chaos PRIVATE ${CMAKE_SOURCE_DIR}/tests)
target_link_libraries(test_chaos weft_static PkgConfig::MSGPACK)
add_test(NAME chaos COMMAND test_chaos $<TARGET_FILE:weft-archiver> $<TARGET_FILE:weft-dlq>
                                       $<TARGET_FILE:chaos_pub> $<TARGET_FILE:chaos_sub>)
# Alone: its seven processes under kill -9 load the machine, and timing-sensitive tests
# (monitor rates) run beside it would suffer; it would suffer from them too.
set_tests_properties(chaos PROPERTIES TIMEOUT 240 LABELS chaos RUN_SERIAL TRUE)
