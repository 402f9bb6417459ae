// A small metric registry: counters, gauges and classic histograms with labels, plus collectors
// that produce families at scrape time (the hub collector reads each hub's probe; the HTTP layer
// and plugins add their own). Rendering to Prometheus/OpenMetrics text is in exposition.hpp.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace weft::monitor {

enum class MetricType { counter, gauge, histogram, info, unknown };

struct Label {
    std::string name;
    std::string value;
    friend bool operator==(const Label&, const Label&) = default;
};
using LabelSet = std::vector<Label>;

/// One metric family as it is at scrape time: what collectors produce and renderers consume.
struct MetricFamily {
    /// Counters are named with their "_total" suffix (added if missing); info metrics with
    /// their "_info" suffix.
    std::string name;
    std::string help;
    /// Base unit ("seconds", "bytes"...); when empty it is taken from the name's suffix.
    /// OpenMetrics gets a # UNIT line only when the family name ends in "_<unit>".
    std::string unit;
    MetricType type = MetricType::gauge;

    struct Sample {  ///< counter, gauge, info, unknown
        LabelSet labels;
        double value = 0;
    };
    struct HistogramSample {
        LabelSet labels;
        std::vector<double> bounds;         ///< upper bounds, increasing, without +Inf
        std::vector<std::uint64_t> counts;  ///< per bucket, NOT cumulative; bounds.size()+1
        double sum = 0;
    };
    std::vector<Sample> samples;
    std::vector<HistogramSample> histograms;
};

/// Produces families at scrape time. collect() may run on any thread (the admin thread),
/// concurrently with the program; it must only read what it reports.
class Collector {
  public:
    virtual ~Collector() = default;
    virtual void collect(std::vector<MetricFamily>& out) const = 0;
};

/// A counter: only goes up. Thread-safe; inc() is one atomic add.
class Counter {
  public:
    void inc(double v = 1) noexcept;
    double value() const noexcept { return value_.load(std::memory_order_relaxed); }

  private:
    std::atomic<double> value_{0};
};

/// A gauge: set, inc, dec. Thread-safe.
class Gauge {
  public:
    void set(double v) noexcept { value_.store(v, std::memory_order_relaxed); }
    void inc(double v = 1) noexcept;
    void dec(double v = 1) noexcept { inc(-v); }
    double value() const noexcept { return value_.load(std::memory_order_relaxed); }

  private:
    std::atomic<double> value_{0};
};

/// A classic histogram with fixed upper bounds. Thread-safe; observe() is a bucket search and
/// two atomic adds.
class Histogram {
  public:
    explicit Histogram(std::span<const double> bounds);
    void observe(double v) noexcept;
    std::span<const double> bounds() const noexcept { return bounds_; }
    /// Non-cumulative counts (bounds().size() + 1, the last is +Inf) and the sum.
    std::vector<std::uint64_t> counts() const;
    double sum() const noexcept { return sum_.load(std::memory_order_relaxed); }

  private:
    std::vector<double> bounds_;
    std::unique_ptr<std::atomic<std::uint64_t>[]> counts_;
    std::atomic<double> sum_{0};
};

/// The 1-2-5 latency buckets from 5 us to 10 s, in seconds (the hub histograms' buckets).
std::span<const double> latency_buckets_seconds() noexcept;

/// All series of one metric name, one per combination of label values.
template <class M>
class Family {
  public:
    /// The series for these label values (in the order of the family's label names); created
    /// on first use. The reference stays valid for the registry's lifetime: look it up once,
    /// keep it. Throws std::invalid_argument on a wrong number of values.
    M& labels(std::initializer_list<std::string_view> values);
    M& labels(std::span<const std::string> values);
    /// The only series of a family without labels.
    M& get() { return labels(std::initializer_list<std::string_view>{}); }

    const std::string& name() const noexcept { return name_; }

  private:
    friend class Registry;
    Family(std::string name, std::vector<std::string> label_names, std::vector<double> bounds)
        : name_(std::move(name)),
          label_names_(std::move(label_names)),
          bounds_(std::move(bounds)) {}
    M& find_or_add(std::vector<std::string> values);
    void collect(MetricFamily& out) const;

    std::string name_;
    std::vector<std::string> label_names_;
    std::vector<double> bounds_;  // histograms only
    mutable std::mutex mu_;
    std::map<std::vector<std::string>, std::unique_ptr<M>> series_;
};

/// Unregisters a collector when destroyed (or on reset()). Move-only.
class CollectorHandle {
  public:
    CollectorHandle() = default;
    CollectorHandle(CollectorHandle&& o) noexcept;
    CollectorHandle& operator=(CollectorHandle&& o) noexcept;
    ~CollectorHandle() { reset(); }
    /// Removes the collector; a scrape in progress finishes first.
    void reset() noexcept;

  private:
    friend class Registry;
    struct State;
    std::shared_ptr<State> state_;
    std::uint64_t id_ = 0;
};

/// The metric registry. Thread-safe: register and update from any thread, scrape from the admin
/// thread. Names are checked (Prometheus syntax, counters end in "_total"); registering the same
/// name again with the same type, help, labels and buckets returns the existing family, any other
/// reuse of a name throws std::invalid_argument, and so does a name whose series would collide
/// with another family's (a gauge 'x_count' beside a histogram 'x'; a gauge 'x' beside a counter
/// 'x_total', which OpenMetrics calls 'x').
class Registry {
  public:
    Registry();
    ~Registry();
    Registry(const Registry&) = delete;
    Registry& operator=(const Registry&) = delete;

    Family<Counter>& counter(std::string name, std::string help,
                             std::vector<std::string> label_names = {});
    Family<Gauge>& gauge(std::string name, std::string help,
                         std::vector<std::string> label_names = {});
    Family<Histogram>& histogram(std::string name, std::string help, std::span<const double> bounds,
                                 std::vector<std::string> label_names = {});

    /// Adds a collector, called at every scrape until the handle is destroyed. The collector
    /// must outlive the handle.
    [[nodiscard]] CollectorHandle add_collector(std::shared_ptr<const Collector> c);
    [[nodiscard]] CollectorHandle add_collector(std::function<void(std::vector<MetricFamily>&)> fn);

    /// Every family: registered ones first (registration order), then the collectors'.
    /// Families of the same name and type from several collectors are merged; a registered
    /// family named as a collected one is left out, with a warning logged once. A family whose
    /// series would collide with another's is left out (the collectors' win over registered
    /// families, an earlier collector's over a later one's), with a warning logged once.
    std::vector<MetricFamily> collect() const;

  private:
    /// Logs `message` the first time a problem with the family `name` is seen.
    void warn_once(const std::string& name, const std::string& message) const;
    friend class CollectorHandle;
    struct Impl;
    std::shared_ptr<Impl> impl_;
};

/// Checks a metric or label name; returns an error text or "" when valid.
std::string check_metric_name(std::string_view name);
std::string check_label_name(std::string_view name);

}  // namespace weft::monitor
