// The JSON-lines sink (report_json.cpp renders the objects).
#include "json_file_sink.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <ctime>
#include <system_error>
#include <utility>

namespace weft::monitor::detail {

JsonFileSink::JsonFileSink(std::string path) : path_(std::move(path)) {
    fd_ = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0666);
    if (fd_ < 0)
        throw std::system_error(errno, std::generic_category(),
                                "cannot open the blocking reports file '" + path_ + "'");
    // An earlier run that died inside a write (killed, out of space) left a line without its
    // end: this run's first record starts on a line of its own, as after a short write.
    if (const int rd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC); rd >= 0) {
        if (const off_t size = ::lseek(rd, 0, SEEK_END); size > 0) {
            char last = '\n';
            if (::pread(rd, &last, 1, size - 1) == 1) cut_ = last != '\n';
        }
        ::close(rd);
    }
    // Report ids start at 1 in every run and the file is appended to: each line names its run
    // (when this process opened the file, and its pid: a container's is 1 every time).
    const auto now = std::chrono::system_clock::now();
    const std::time_t secs = std::chrono::system_clock::to_time_t(now);
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() %
        1000;
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char when[40];
    std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    run_prefix_ = std::string("{\"run\":\"") + when + "." + std::to_string(1000 + ms).substr(1) +
                  "Z/" + std::to_string(::getpid()) + "\",";
}

JsonFileSink::~JsonFileSink() {
    ::close(fd_);
}

void JsonFileSink::on_report(const BlockingReport& r) {
    reopen_if_moved();
    // After a rotation the report that had a repeated stack's frames is in the old file.
    write(to_json(r, reopened_ || r.same_stack_as == 0));
}

void JsonFileSink::reopen_if_moved() noexcept {
    struct stat open_st {};
    struct stat path_st {};
    if (::fstat(fd_, &open_st) != 0) return;
    if (::stat(path_.c_str(), &path_st) == 0 && path_st.st_ino == open_st.st_ino &&
        path_st.st_dev == open_st.st_dev)
        return;
    const int fd = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0) return;  // lines go on to the file already open
    ::close(fd_);
    fd_ = fd;
    cut_ = false;
    reopened_ = true;
}

void JsonFileSink::on_end(const BlockingEnd& e) {
    reopen_if_moved();
    write(to_json(e));
}

void JsonFileSink::write(const std::string& line) {
    // One write() for the line and its newline (O_APPEND: at the end, whoever else appends).
    // After a short write the file ends inside a line: the next one starts with a newline, so
    // that a reader loses that line only, not the one after it.
    std::string out;
    out.reserve(line.size() + 2);
    if (cut_) out += '\n';
    if (line.size() > 2 && line.front() == '{') {
        out += run_prefix_;  // {"run":"...", then the record's own fields
        out.append(line, 1);
    } else {
        out += line;
    }
    out += '\n';
    std::size_t done = 0;
    while (done < out.size()) {
        const ssize_t n = ::write(fd_, out.data() + done, out.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            const int err = n < 0 ? errno : EIO;
            if (done > 0) cut_ = out[done - 1] != '\n';
            throw std::system_error(err, std::generic_category(), "writing " + path_);
        }
        done += static_cast<std::size_t>(n);
    }
    cut_ = false;
}

}  // namespace weft::monitor::detail
