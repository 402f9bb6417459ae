// Everything the server (or a program) uses from the monitor, in one include.
#pragma once

#include "weft/monitor/assert_switches.hpp"
#include "weft/monitor/blocking_report.hpp"
#include "weft/monitor/cpu_profile.hpp"
#include "weft/monitor/exposition.hpp"
#include "weft/monitor/metrics.hpp"
#include "weft/monitor/pprof.hpp"
#include "weft/monitor/run_info.hpp"
#include "weft/monitor/settings.hpp"
#include "weft/monitor/standard_metrics.hpp"
#include "weft/monitor/watchdog.hpp"
