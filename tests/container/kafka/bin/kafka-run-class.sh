#!/bin/sh
# kafka-run-class.sh CLASS ARGS...: java with the broker's jars. KAFKA_HEAP_OPTS as in
# Apache's scripts; LOG4J_CONFIG names a file in /opt/kafka/config (default: the tools'
# one, warnings to stderr).
exec java ${KAFKA_HEAP_OPTS:--Xmx256m} -XX:+UseSerialGC -Xss1m -Djava.awt.headless=true \
  -Dlog4j.configuration="file:/opt/kafka/config/${LOG4J_CONFIG:-log4j-tools.properties}" \
  -cp '/opt/kafka/libs/*' "$@"
