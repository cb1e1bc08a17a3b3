# frozen_string_literal: true

# Runs one scenario in one Ruby implementation, in a process of its own, and
# prints its figures as one line of JSON (the same line the C programs print):
#
#   ruby child.rb IMPL SCENARIO PARAMS_JSON MIN_TIME
#
# Rounds of the scenario run until MIN_TIME seconds have passed (at least
# one); the operations they report are summed (the harness checks the sum,
# as it does the C programs'). With a MIN_TIME above
# zero one untimed round runs first, so YJIT has compiled the code and the
# heap has grown to the work's size (the figures are of the steady state);
# with zero (the cost scenario) the one round is the measurement, cold.

require "json"
require "tmpdir"

IMPLS = {
  "threads" => ["threads", "Threads"],
  "um_fs" => ["um_fs", "UMFiberScheduler"],
  "um" => ["um", "UMMachine"],
  "async_epoll" => ["async", "Async", "EPoll"],
  "async_uring" => ["async", "Async", "URing"]
}.freeze

def peak_rss_kb = File.read("/proc/self/status")[/^VmHWM:\s+(\d+)/, 1].to_i
def current_rss_kb = File.read("/proc/self/status")[/^VmRSS:\s+(\d+)/, 1].to_i

# Thousands of groups need tens of thousands of fds.
def raise_fd_limit(needed)
  soft, hard = Process.getrlimit(:NOFILE)
  return if soft >= needed
  Process.setrlimit(:NOFILE, [needed, hard].max, [needed, hard].max)
rescue Errno::EPERM
  Process.setrlimit(:NOFILE, hard, hard)
end

impl_name, scenario, params_json, min_time = ARGV
file, klass, selector = IMPLS.fetch(impl_name) { abort "unknown implementation #{impl_name.inspect}" }
ENV["IO_EVENT_SELECTOR"] = selector if selector
require_relative "../impl/#{file}"
impl = Bench.const_get(klass).new
params = JSON.parse(params_json, symbolize_names: true)
min_time = Float(min_time)
raise_fd_limit(4 * params.fetch(:groups, 1) + 256)

Dir.mktmpdir("um-bench") do |dir|
  params[:dir] = dir if scenario == "mutex_io"
  base_rss = current_rss_kb
  impl.public_send(scenario, **params) if min_time > 0
  ops = rounds = 0
  wall0 = Process.clock_gettime(Process::CLOCK_MONOTONIC)
  cpu0 = Process.clock_gettime(Process::CLOCK_PROCESS_CPUTIME_ID)
  loop do
    ops += impl.public_send(scenario, **params)
    rounds += 1
    break if Process.clock_gettime(Process::CLOCK_MONOTONIC) - wall0 >= min_time
  end
  wall = Process.clock_gettime(Process::CLOCK_MONOTONIC) - wall0
  cpu = Process.clock_gettime(Process::CLOCK_PROCESS_CPUTIME_ID) - cpu0
  puts JSON.generate(ops:, wall:, cpu:, rss_kb: peak_rss_kb, base_rss_kb: base_rss, rounds:)
end
