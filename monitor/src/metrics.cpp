// The metric registry: families of counters, gauges and histograms, collectors, and collect(),
// which snapshots everything into MetricFamily values for the renderers.
#include "weft/monitor/metrics.hpp"

#include <algorithm>
#include <array>
#include <limits>
#include <set>
#include <stdexcept>
#include <unordered_map>

#include "weft/core/internal/hub_probe.hpp"
#include "weft/core/log.hpp"

namespace weft::monitor {

// ---------------------------------------------------------------------------------------------
// Series.

void Counter::inc(double v) noexcept {
    if (!(v >= 0)) return;  // counters only go up; NaN is ignored too
    value_.fetch_add(v, std::memory_order_relaxed);
}

void Gauge::inc(double v) noexcept {
    value_.fetch_add(v, std::memory_order_relaxed);
}

Histogram::Histogram(std::span<const double> bounds)
    : bounds_(bounds.begin(), bounds.end()),
      counts_(new std::atomic<std::uint64_t>[bounds.size() + 1]) {
    for (std::size_t i = 0; i <= bounds_.size(); ++i)
        counts_[i].store(0, std::memory_order_relaxed);
}

void Histogram::observe(double v) noexcept {
    // NaN is below no bound: only +Inf counts it (as client_golang does); the sum shows it.
    std::size_t i =
        v != v ? bounds_.size()
               : static_cast<std::size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) -
                                          bounds_.begin());
    counts_[i].fetch_add(1, std::memory_order_relaxed);
    sum_.fetch_add(v, std::memory_order_relaxed);
}

std::vector<std::uint64_t> Histogram::counts() const {
    std::vector<std::uint64_t> out(bounds_.size() + 1);
    for (std::size_t i = 0; i < out.size(); ++i)
        out[i] = counts_[i].load(std::memory_order_relaxed);
    return out;
}

std::span<const double> latency_buckets_seconds() noexcept {
    static const std::array<double, kLatencyBucketBoundsNs.size()> kBounds = [] {
        std::array<double, kLatencyBucketBoundsNs.size()> b{};
        for (std::size_t i = 0; i < b.size(); ++i)
            b[i] = static_cast<double>(kLatencyBucketBoundsNs[i]) / 1e9;
        return b;
    }();
    return kBounds;
}

// ---------------------------------------------------------------------------------------------
// Names.

std::string check_metric_name(std::string_view n) {
    if (n.empty()) return "a metric name may not be empty";
    for (std::size_t i = 0; i < n.size(); ++i) {
        char c = n[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
                  (i > 0 && c >= '0' && c <= '9');
        if (!ok)
            return "metric name '" + std::string(n) +
                   "' must match [a-zA-Z_:][a-zA-Z0-9_:]* (snake_case recommended)";
    }
    return "";
}

std::string check_label_name(std::string_view n) {
    if (n.empty()) return "a label name may not be empty";
    for (std::size_t i = 0; i < n.size(); ++i) {
        char c = n[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                  (i > 0 && c >= '0' && c <= '9');
        if (!ok) return "label name '" + std::string(n) + "' must match [a-zA-Z_][a-zA-Z0-9_]*";
    }
    if (n.size() >= 2 && n[0] == '_' && n[1] == '_')
        return "label name '" + std::string(n) + "' is reserved (starts with __)";
    return "";
}

namespace {

/// The names a family's exposition uses, in either format: its metadata name and its series
/// names (a histogram 'x' writes x_bucket, x_sum and x_count; a counter 'x_total' is the family
/// 'x' in OpenMetrics, with x_created reserved).
std::vector<std::string> exposed_names(const std::string& name, MetricType type) {
    switch (type) {
        case MetricType::counter: {
            const std::string base =
                name.ends_with("_total") ? name.substr(0, name.size() - 6) : name;
            return {base, base + "_total", base + "_created"};
        }
        case MetricType::histogram:
            return {name, name + "_bucket", name + "_sum", name + "_count", name + "_created"};
        case MetricType::info: {
            const std::string base =
                name.ends_with("_info") ? name.substr(0, name.size() - 5) : name;
            return {base, base + "_info"};
        }
        case MetricType::gauge:
        case MetricType::unknown:
            break;
    }
    return {name};
}

/// Which name of `taken` (exposed name -> its family) the family `name` of `type` would use
/// too, belonging to another family; empty when none.
std::string clash(const std::unordered_map<std::string, std::string>& taken,
                  const std::string& name, MetricType type, std::string* other) {
    for (std::string& n : exposed_names(name, type)) {
        auto it = taken.find(n);
        if (it != taken.end() && it->second != name) {
            if (other) *other = it->second;
            return std::move(n);
        }
    }
    return {};
}

void take(std::unordered_map<std::string, std::string>& taken, const std::string& name,
          MetricType type) {
    for (std::string& n : exposed_names(name, type))
        taken.emplace(std::move(n), name);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Families.

template <class M>
M& Family<M>::labels(std::initializer_list<std::string_view> values) {
    std::vector<std::string> v;
    v.reserve(values.size());
    for (auto s : values)
        v.emplace_back(s);
    return find_or_add(std::move(v));
}

template <class M>
M& Family<M>::labels(std::span<const std::string> values) {
    return find_or_add(std::vector<std::string>(values.begin(), values.end()));
}

template <class M>
M& Family<M>::find_or_add(std::vector<std::string> values) {
    if (values.size() != label_names_.size())
        throw std::invalid_argument("metric '" + name_ + "' takes " +
                                    std::to_string(label_names_.size()) + " label value(s), got " +
                                    std::to_string(values.size()));
    std::lock_guard<std::mutex> g(mu_);
    auto it = series_.find(values);
    if (it != series_.end()) return *it->second;
    std::unique_ptr<M> m;
    if constexpr (std::is_same_v<M, Histogram>)
        m = std::make_unique<Histogram>(bounds_);
    else
        m = std::make_unique<M>();
    M& ref = *m;
    series_.emplace(std::move(values), std::move(m));
    return ref;
}

template <class M>
void Family<M>::collect(MetricFamily& out) const {
    std::lock_guard<std::mutex> g(mu_);
    for (const auto& [values, m] : series_) {
        LabelSet ls;
        for (std::size_t i = 0; i < values.size(); ++i)
            ls.push_back({label_names_[i], values[i]});
        if constexpr (std::is_same_v<M, Histogram>) {
            out.histograms.push_back({std::move(ls), bounds_, m->counts(), m->sum()});
        } else {
            out.samples.push_back({std::move(ls), m->value()});
        }
    }
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

// ---------------------------------------------------------------------------------------------
// Registry.

struct Registry::Impl {
    struct Entry {
        MetricType type;
        std::string name;
        std::string help;
        std::vector<std::string> label_names;
        std::vector<double> bounds;
        std::shared_ptr<void> family;  // Family<Counter|Gauge|Histogram>
        void (*collect)(const void* family, MetricFamily& out);
    };
    std::mutex mu;  // entries, warned
    std::vector<Entry> entries;
    /// Families left out of the exposition for a clash of names, said once each.
    std::set<std::string> warned;

    /// Refuses a new family whose exposition would use a name another registered family uses.
    void check_names(const std::string& name, MetricType type) const {
        std::unordered_map<std::string, std::string> taken;
        for (const Entry& e : entries)
            if (e.name != name) take(taken, e.name, e.type);
        std::string other;
        if (std::string n = clash(taken, name, type, &other); !n.empty())
            throw std::invalid_argument("metric '" + name + "' clashes with metric '" + other +
                                        "': both would expose '" + n + "'");
    }

    // Held while collectors run, so that removing one waits for a scrape in progress.
    std::mutex collectors_mu;
    std::map<std::uint64_t, std::shared_ptr<std::function<void(std::vector<MetricFamily>&)>>>
        collectors;
    std::uint64_t next_id = 1;
};

struct CollectorHandle::State {
    std::weak_ptr<Registry::Impl> registry;
};

CollectorHandle::CollectorHandle(CollectorHandle&& o) noexcept
    : state_(std::move(o.state_)), id_(std::exchange(o.id_, 0)) {}

CollectorHandle& CollectorHandle::operator=(CollectorHandle&& o) noexcept {
    if (this != &o) {
        reset();
        state_ = std::move(o.state_);
        id_ = std::exchange(o.id_, 0);
    }
    return *this;
}

void CollectorHandle::reset() noexcept {
    if (!state_) return;
    if (auto impl = state_->registry.lock()) {
        std::lock_guard<std::mutex> g(impl->collectors_mu);
        impl->collectors.erase(id_);
    }
    state_.reset();
    id_ = 0;
}

Registry::Registry() : impl_(std::make_shared<Impl>()) {}
Registry::~Registry() = default;

namespace {

void check_definition(const std::string& name, MetricType type,
                      const std::vector<std::string>& labels) {
    if (auto e = check_metric_name(name); !e.empty()) throw std::invalid_argument(e);
    if (type == MetricType::counter &&
        (name.size() <= 6 || name.compare(name.size() - 6, 6, "_total") != 0))
        throw std::invalid_argument("counter '" + name + "' must be named with a _total suffix");
    for (std::size_t i = 0; i < labels.size(); ++i) {
        if (auto e = check_label_name(labels[i]); !e.empty()) throw std::invalid_argument(e);
        if (type == MetricType::histogram && labels[i] == "le")
            throw std::invalid_argument("histogram '" + name + "' may not have a label 'le'");
        for (std::size_t j = 0; j < i; ++j)
            if (labels[j] == labels[i])
                throw std::invalid_argument("metric '" + name + "' repeats label '" + labels[i] +
                                            "'");
    }
}

}  // namespace

Family<Counter>& Registry::counter(std::string name, std::string help,
                                   std::vector<std::string> label_names) {
    check_definition(name, MetricType::counter, label_names);
    std::lock_guard<std::mutex> g(impl_->mu);
    for (auto& e : impl_->entries) {
        if (e.name != name) continue;
        if (e.type == MetricType::counter && e.help == help && e.label_names == label_names)
            return *static_cast<Family<Counter>*>(e.family.get());
        throw std::invalid_argument("metric '" + name + "' is already registered differently");
    }
    impl_->check_names(name, MetricType::counter);
    auto f = std::shared_ptr<Family<Counter>>(new Family<Counter>(name, label_names, {}));
    if (label_names.empty()) f->get();  // a label-less metric shows 0 from the start
    impl_->entries.push_back({MetricType::counter,
                              std::move(name),
                              std::move(help),
                              std::move(label_names),
                              {},
                              f,
                              +[](const void* p, MetricFamily& o) {
                                  static_cast<const Family<Counter>*>(p)->collect(o);
                              }});
    return *f;
}

Family<Gauge>& Registry::gauge(std::string name, std::string help,
                               std::vector<std::string> label_names) {
    check_definition(name, MetricType::gauge, label_names);
    std::lock_guard<std::mutex> g(impl_->mu);
    for (auto& e : impl_->entries) {
        if (e.name != name) continue;
        if (e.type == MetricType::gauge && e.help == help && e.label_names == label_names)
            return *static_cast<Family<Gauge>*>(e.family.get());
        throw std::invalid_argument("metric '" + name + "' is already registered differently");
    }
    impl_->check_names(name, MetricType::gauge);
    auto f = std::shared_ptr<Family<Gauge>>(new Family<Gauge>(name, label_names, {}));
    if (label_names.empty()) f->get();  // a label-less metric shows 0 from the start
    impl_->entries.push_back({MetricType::gauge,
                              std::move(name),
                              std::move(help),
                              std::move(label_names),
                              {},
                              f,
                              +[](const void* p, MetricFamily& o) {
                                  static_cast<const Family<Gauge>*>(p)->collect(o);
                              }});
    return *f;
}

Family<Histogram>& Registry::histogram(std::string name, std::string help,
                                       std::span<const double> bounds,
                                       std::vector<std::string> label_names) {
    check_definition(name, MetricType::histogram, label_names);
    std::vector<double> b(bounds.begin(), bounds.end());
    if (b.empty()) throw std::invalid_argument("histogram '" + name + "' needs at least one bound");
    for (std::size_t i = 0; i < b.size(); ++i) {
        if (!(b[i] == b[i]) || b[i] == std::numeric_limits<double>::infinity() ||
            (i > 0 && !(b[i] > b[i - 1])))
            throw std::invalid_argument("histogram '" + name +
                                        "': bounds must be finite and strictly increasing "
                                        "(+Inf is added automatically)");
    }
    std::lock_guard<std::mutex> g(impl_->mu);
    for (auto& e : impl_->entries) {
        if (e.name != name) continue;
        if (e.type == MetricType::histogram && e.help == help && e.label_names == label_names &&
            e.bounds == b)
            return *static_cast<Family<Histogram>*>(e.family.get());
        throw std::invalid_argument("metric '" + name + "' is already registered differently");
    }
    impl_->check_names(name, MetricType::histogram);
    auto f = std::shared_ptr<Family<Histogram>>(new Family<Histogram>(name, label_names, b));
    if (label_names.empty()) f->get();
    impl_->entries.push_back({MetricType::histogram, std::move(name), std::move(help),
                              std::move(label_names), std::move(b), f,
                              +[](const void* p, MetricFamily& o) {
                                  static_cast<const Family<Histogram>*>(p)->collect(o);
                              }});
    return *f;
}

CollectorHandle Registry::add_collector(std::shared_ptr<const Collector> c) {
    return add_collector([c = std::move(c)](std::vector<MetricFamily>& out) { c->collect(out); });
}

CollectorHandle Registry::add_collector(std::function<void(std::vector<MetricFamily>&)> fn) {
    CollectorHandle h;
    std::lock_guard<std::mutex> g(impl_->collectors_mu);
    h.id_ = impl_->next_id++;
    h.state_ = std::make_shared<CollectorHandle::State>();
    h.state_->registry = impl_;
    impl_->collectors.emplace(
        h.id_, std::make_shared<std::function<void(std::vector<MetricFamily>&)>>(std::move(fn)));
    return h;
}

std::vector<MetricFamily> Registry::collect() const {
    std::vector<MetricFamily> out;
    {
        std::lock_guard<std::mutex> g(impl_->mu);
        for (const auto& e : impl_->entries) {
            MetricFamily f;
            f.name = e.name;
            f.help = e.help;
            f.type = e.type;
            e.collect(e.family.get(), f);
            out.push_back(std::move(f));
        }
    }
    std::vector<MetricFamily> extra;
    {
        std::lock_guard<std::mutex> g(impl_->collectors_mu);
        for (const auto& [id, fn] : impl_->collectors) {
            try {
                (*fn)(extra);
            } catch (const std::exception& ex) {
                weft::logger("weft.monitor")
                    ->error("metrics collector {} failed: {}", id, ex.what());
            } catch (...) {
                weft::logger("weft.monitor")->error("metrics collector {} failed", id);
            }
        }
    }
    // Merge families that share a name (several collectors may each report some series of one
    // metric, e.g. one per hub); a clash of types keeps the first and says so.
    const std::size_t registered = out.size();
    std::unordered_map<std::string, std::size_t> index;
    for (std::size_t i = 0; i < out.size(); ++i)
        index.emplace(out[i].name, i);
    // A registered family named as a collected one (a plugin's process_cpu_seconds_total) is
    // not merged into it: its series would repeat the server's under another HELP.
    std::vector<std::size_t> shadowed;
    for (auto& f : extra) {
        auto it = index.find(f.name);
        if (it != index.end() && it->second < registered) {
            shadowed.push_back(it->second);
            it->second = out.size();
            out.push_back(std::move(f));
            continue;
        }
        if (it == index.end()) {
            index.emplace(f.name, out.size());
            out.push_back(std::move(f));
            continue;
        }
        MetricFamily& into = out[it->second];
        if (into.type != f.type) {
            warn_once(f.name, "metric '" + f.name +
                                  "' is reported with two different types; keeping the first");
            continue;
        }
        for (auto& s : f.samples)
            into.samples.push_back(std::move(s));
        for (auto& h : f.histograms)
            into.histograms.push_back(std::move(h));
    }
    // Two families whose expositions would use one name (a histogram 'x' and a gauge
    // 'x_count'; a counter 'x_total' and a gauge 'x') make the whole scrape invalid. The
    // collected families (the server's own) keep their names: a registered family that would
    // clash with one, or a collected one with an earlier, is left out, and that is said once.
    std::unordered_map<std::string, std::string> taken;
    std::vector<bool> left_out(out.size(), false);
    for (std::size_t i : shadowed) {
        if (left_out[i]) continue;
        left_out[i] = true;
        warn_once(out[i].name, "metric '" + out[i].name +
                                   "' is left out of the exposition: the server reports a "
                                   "metric of that name itself");
    }
    auto claim = [&](std::size_t from, std::size_t to) {
        for (std::size_t i = from; i < to; ++i) {
            std::string other;
            const std::string n = clash(taken, out[i].name, out[i].type, &other);
            if (n.empty()) {
                take(taken, out[i].name, out[i].type);
                continue;
            }
            left_out[i] = true;
            warn_once(out[i].name, "metric '" + out[i].name +
                                       "' is left out of the exposition: it would expose '" + n +
                                       "', as metric '" + other + "' does");
        }
    };
    claim(registered, out.size());
    claim(0, registered);
    std::size_t kept = 0;
    for (std::size_t i = 0; i < out.size(); ++i)
        if (!left_out[i]) {
            if (kept != i) out[kept] = std::move(out[i]);
            ++kept;
        }
    out.resize(kept);
    return out;
}

void Registry::warn_once(const std::string& name, const std::string& message) const {
    {
        std::lock_guard<std::mutex> g(impl_->mu);
        if (!impl_->warned.insert(name).second) return;
    }
    weft::logger("weft.monitor")->warn("{}", message);
}

}  // namespace weft::monitor
