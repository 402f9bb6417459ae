// Rendering metric families as Prometheus text (version 0.0.4, the default) or OpenMetrics 1.0
// text, and choosing between them from a scraper's Accept header.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "weft/monitor/metrics.hpp"

namespace weft::monitor {

enum class ExpositionFormat { prometheus_text, openmetrics };

/// OpenMetrics when the Accept header asks for application/openmetrics-text with a quality at
/// least as high as text/plain's; Prometheus text 0.0.4 otherwise (also for an empty or
/// malformed header).
ExpositionFormat negotiate_format(std::string_view accept_header);

/// The Content-Type of a rendered body:
/// "text/plain; version=0.0.4; charset=utf-8" or
/// "application/openmetrics-text; version=1.0.0; charset=utf-8".
std::string_view content_type(ExpositionFormat f) noexcept;

/// Renders `families` (as from Registry::collect()). OpenMetrics output ends with "# EOF".
std::string render(const std::vector<MetricFamily>& families, ExpositionFormat f);

/// A rendered scrape: what a /metrics handler sends.
struct Scrape {
    std::string content_type;
    std::string body;
};
/// negotiate_format + collect + render, in one call.
Scrape scrape(const Registry& registry, std::string_view accept_header);

/// A number as the exposition formats write it: integers plainly ("10"), others in the
/// shortest form that reads back exactly, in Go's %g style ("5e-06", "0.0001", "2.5"), and
/// "+Inf", "-Inf", "NaN".
std::string format_value(double v);

}  // namespace weft::monitor
