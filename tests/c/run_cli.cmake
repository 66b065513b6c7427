# cli_<bundle> test: routerm-score BUNDLE < pairs > OUT, then compare OUT with the reference.
# -DCLI=... -DPARITY=... -DBUNDLE=... -DREFERENCE=... -DOUT=...
execute_process(COMMAND ${CLI} ${BUNDLE} INPUT_FILE ${REFERENCE} OUTPUT_FILE ${OUT} RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "routerm-score exited with ${rc}")
endif()
execute_process(COMMAND ${PARITY} --compare-cli ${OUT} ${BUNDLE} ${REFERENCE} RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "routerm-score output differs from the reference")
endif()
