// Everything a handler or program author uses from the runtime, in one include.
#pragma once

#include "weft/core/channel.hpp"
#include "weft/core/deadline.hpp"
#include "weft/core/event.hpp"
#include "weft/core/fiber.hpp"
#include "weft/core/hub.hpp"
#include "weft/core/mutex.hpp"
#include "weft/core/offload.hpp"
#include "weft/core/result.hpp"
#include "weft/core/runtime.hpp"
#include "weft/core/semaphore.hpp"
#include "weft/core/socket_address.hpp"
#include "weft/core/tcp.hpp"
#include "weft/core/wait_group.hpp"
#include "weft/core/wait_queue.hpp"
