# cli_refuses_nul test: a line whose prompt holds U+0000 stops routerm-score with exit status 1 and
# a message naming the line and the field (the C API would score the text cut at the NUL).
# -DCLI=... -DBUNDLE=... -DWORK=...
file(WRITE ${WORK}/nul.jsonl "{\"prompt\": \"fine\", \"response\": \"ok\"}\n{\"prompt\": \"a\\u0000b\", \"response\": \"x\"}\n")
execute_process(COMMAND ${CLI} ${BUNDLE} INPUT_FILE ${WORK}/nul.jsonl OUTPUT_VARIABLE out ERROR_VARIABLE err
                RESULT_VARIABLE rc)
if(NOT rc EQUAL 1)
  message(FATAL_ERROR "routerm-score exited with ${rc} on a NUL in a prompt (expected 1)")
endif()
if(NOT err MATCHES "stdin line 2: field \"prompt\" holds U\\+0000")
  message(FATAL_ERROR "unexpected message: ${err}")
endif()
