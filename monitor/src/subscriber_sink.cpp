// The subscriber sink.
#include "subscriber_sink.hpp"

#include <utility>

namespace weft::monitor::detail {

SubscriberSink::SubscriberSink(std::shared_ptr<spdlog::logger> log) : log_(std::move(log)) {}

void SubscriberSink::on_report(const BlockingReport& r) {
    blocked_->emit(r, *log_, "on_blocked");
}

void SubscriberSink::on_end(const BlockingEnd& e) {
    unblocked_->emit(e, *log_, "on_unblocked");
}

std::function<void()> SubscriberSink::add_blocked(std::function<void(const BlockingReport&)> fn) {
    return blocked_->add(std::move(fn));
}

std::function<void()> SubscriberSink::add_unblocked(std::function<void(const BlockingEnd&)> fn) {
    return unblocked_->add(std::move(fn));
}

}  // namespace weft::monitor::detail
