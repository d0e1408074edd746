/*  weft.h - the public API of libweft, a brokerless event fabric.

    Include this one header. It pulls in:
      weft/error.h     error codes and their names
      weft/envelope.h  wire format v1: topics, the envelope codec, event ids
      weft/config.h    configuration from code, WEFT_* environment and ZPL files
      weft/node.h      a node: publish, subscribe, discovery, outbox, stats
      weft/control.h   a client for the control protocol (PING, INFO, FETCH, ...)
      weft/service.h   what service nodes (archiver, DLQ) add: heartbeat figures
      weft/archive.h   replay and look-ups from an archiver

    Build against it with `pkg-config --cflags --libs weft`.
*/
#ifndef WEFT_H_INCLUDED
#define WEFT_H_INCLUDED

#define WEFT_VERSION_MAJOR 0
#define WEFT_VERSION_MINOR 1
#define WEFT_VERSION_PATCH 0
#define WEFT_VERSION_STRING "0.1.0"

#include "weft/error.h"
#include "weft/envelope.h"
#include "weft/config.h"
#include "weft/node.h"
#include "weft/control.h"
#include "weft/service.h"
#include "weft/archive.h"

#endif
