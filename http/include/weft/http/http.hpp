// Everything a handler or server author uses from weft::http, in one include.
#pragma once

#include "weft/http/headers.hpp"
#include "weft/http/method.hpp"
#include "weft/http/metrics.hpp"
#include "weft/http/request.hpp"
#include "weft/http/response.hpp"
#include "weft/http/response_stream.hpp"
#include "weft/http/router.hpp"
#include "weft/http/server.hpp"
#include "weft/http/server_options.hpp"
#include "weft/http/websocket.hpp"
