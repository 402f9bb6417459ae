// CPU count from affinity and cgroup quota (v1 and v2, including hybrid layouts).
#include "cpu_quota.hpp"

#include <sched.h>

#include <thread>

#include <fstream>
#include <sstream>
#include <vector>

#include "weft/core/runtime.hpp"

namespace weft::detail {

namespace {

std::string read_first_line(const std::string& path) {
    std::ifstream in(path);
    std::string line;
    if (in) std::getline(in, line);
    return line;
}

struct Mount {
    std::string root;         // the cgroup path mounted there
    std::string mount_point;  // where
    bool v2 = false;
    bool has_cpu = false;
};

std::vector<Mount> cgroup_mounts(const std::string& root) {
    std::vector<Mount> out;
    std::ifstream in(root + "/proc/self/mountinfo");
    std::string line;
    while (std::getline(in, line)) {
        // id parent major:minor root mount-point options [optional...] - fstype source superopts
        std::istringstream ss(line);
        std::string id, parent, dev, mroot, mpoint, opts, tok;
        ss >> id >> parent >> dev >> mroot >> mpoint >> opts;
        while (ss >> tok && tok != "-") {
        }
        std::string fstype, source, super;
        ss >> fstype >> source >> super;
        if (fstype == "cgroup2") {
            out.push_back({mroot, mpoint, true, true});
        } else if (fstype == "cgroup") {
            std::istringstream so(super);
            std::string o;
            bool cpu = false;
            while (std::getline(so, o, ','))
                if (o == "cpu") cpu = true;
            if (cpu) out.push_back({mroot, mpoint, false, true});
        }
    }
    return out;
}

// Maps a cgroup path from /proc/self/cgroup onto a mount of that hierarchy.
std::string cgroup_dir(const Mount& m, const std::string& path) {
    std::string rel = path;
    if (m.root != "/" && rel.compare(0, m.root.size(), m.root) == 0)
        rel = rel.substr(m.root.size());
    if (!rel.empty() && rel.back() == '/') rel.pop_back();
    return m.mount_point + rel;
}

unsigned min_nonzero(unsigned a, unsigned b) {
    if (a == 0) return b;
    if (b == 0) return a;
    return a < b ? a : b;
}

}  // namespace

unsigned quota_to_cpus(long long quota, long long period) {
    if (quota <= 0 || period <= 0) return 0;
    return static_cast<unsigned>((quota + period - 1) / period);
}

unsigned parse_cpu_max(const std::string& text) {
    std::istringstream ss(text);
    std::string q;
    long long period = 100000;
    ss >> q >> period;
    if (q.empty() || q == "max") return 0;
    try {
        return quota_to_cpus(std::stoll(q), period);
    } catch (...) {
        return 0;
    }
}

unsigned cgroup_cpu_limit(const std::string& root) {
    std::vector<Mount> mounts = cgroup_mounts(root);
    std::ifstream in(root + "/proc/self/cgroup");
    std::string line;
    unsigned limit = 0;
    while (std::getline(in, line)) {
        // hierarchy-id:controllers:path
        auto c1 = line.find(':');
        auto c2 = line.find(':', c1 + 1);
        if (c1 == std::string::npos || c2 == std::string::npos) continue;
        std::string controllers = line.substr(c1 + 1, c2 - c1 - 1);
        std::string path = line.substr(c2 + 1);
        bool v2 = controllers.empty();
        bool cpu = false;
        std::istringstream cs(controllers);
        std::string c;
        while (std::getline(cs, c, ','))
            if (c == "cpu") cpu = true;
        for (const Mount& m : mounts) {
            if (m.v2 != v2 || (!v2 && !cpu)) continue;
            // The limit of a cgroup is the tightest along its path up to the mount's root.
            std::string dir = cgroup_dir(m, path);
            for (;;) {
                if (v2) {
                    std::string t = read_first_line(dir + "/cpu.max");
                    if (!t.empty()) limit = min_nonzero(limit, parse_cpu_max(t));
                } else {
                    std::string q = read_first_line(dir + "/cpu.cfs_quota_us");
                    std::string p = read_first_line(dir + "/cpu.cfs_period_us");
                    if (!q.empty() && !p.empty()) {
                        try {
                            limit = min_nonzero(limit, quota_to_cpus(std::stoll(q), std::stoll(p)));
                        } catch (...) {
                        }
                    }
                }
                if (dir.size() <= m.mount_point.size()) break;
                auto slash = dir.rfind('/');
                if (slash == std::string::npos || slash < m.mount_point.size()) break;
                dir = dir.substr(0, slash);
            }
        }
    }
    return limit;
}

}  // namespace weft::detail

namespace weft {

unsigned default_hub_count() noexcept {
    unsigned n = 0;
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) n = static_cast<unsigned>(CPU_COUNT(&set));
    if (n == 0) n = std::thread::hardware_concurrency();
    if (n == 0) n = 1;
    try {
        unsigned q = detail::cgroup_cpu_limit();
        if (q > 0 && q < n) n = q;
    } catch (...) {
    }
    return n;
}

}  // namespace weft
