// The JSON-lines sink (report_json.cpp renders the objects).
#include "json_file_sink.hpp"

#include <cerrno>
#include <system_error>
#include <utility>

namespace weft::monitor::detail {

JsonFileSink::JsonFileSink(std::string path) : path_(std::move(path)) {
    file_ = std::fopen(path_.c_str(), "ae");
    if (!file_)
        throw std::system_error(errno, std::generic_category(),
                                "cannot open the blocking reports file '" + path_ + "'");
}

JsonFileSink::~JsonFileSink() {
    std::fclose(file_);
}

void JsonFileSink::on_report(const BlockingReport& r) {
    write(to_json(r, r.same_stack_as == 0));
}

void JsonFileSink::on_end(const BlockingEnd& e) {
    write(to_json(e));
}

void JsonFileSink::write(const std::string& line) {
    if (std::fputs(line.c_str(), file_) < 0 || std::fputc('\n', file_) < 0 ||
        std::fflush(file_) != 0)
        throw std::system_error(errno, std::generic_category(), "writing " + path_);
}

}  // namespace weft::monitor::detail
