# The archiver as a separate process: archive, replay, kill -9 and repair, retention.
add_executable(test_archiver test_archiver.c)
target_include_directories(test_archiver PRIVATE ${CMAKE_SOURCE_DIR}/tests ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(test_archiver weft_static PkgConfig::MSGPACK)
add_test(NAME archiver COMMAND test_archiver $<TARGET_FILE:weft-archiver>)
set_tests_properties(archiver PROPERTIES TIMEOUT 240)

# The archive from the command line: weft replay, weft get, weft archive info.
add_test(NAME archive_cli COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/test_archive_cli.sh
                                  $<TARGET_FILE:weft_cli> $<TARGET_FILE:weft-archiver>)
set_tests_properties(archive_cli PROPERTIES TIMEOUT 60)
