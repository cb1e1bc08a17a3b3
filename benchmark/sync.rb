# frozen_string_literal: true

# Uncontended locking: UM#synchronize(UM::Mutex) against core
# Mutex#synchronize, and UM::Queue push+shift against core Queue push+shift,
# in the same run. Median of 3 runs. Run from the repository root:
#
#   bin/ruby benchmark/sync.rb
#
# UM_BENCH_SCALE (a float, default 1.0) multiplies the iteration counts.

require "uringmachine"

SCALE = Float(ENV.fetch("UM_BENCH_SCALE", "1.0"))
N = [(2_000_000 * SCALE).to_i, 1].max

def measure
  runs = 3.times.map do
    t0 = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    yield
    Process.clock_gettime(Process::CLOCK_MONOTONIC) - t0
  end
  N / runs.sort[1]
end

machine = UM.new
um_mutex = UM::Mutex.new
core_mutex = Mutex.new
um_queue = UM::Queue.new
core_queue = Queue.new

results = {
  "synchronize  UM::Mutex" => measure { N.times { machine.synchronize(um_mutex) { nil } } },
  "synchronize  Mutex" => measure { N.times { core_mutex.synchronize { nil } } },
  "push+shift   UM::Queue" => measure { N.times { machine.push(um_queue, 1); machine.shift(um_queue) } },
  "push+shift   Queue" => measure { N.times { core_queue.push(1); core_queue.shift } }
}

puts "ruby #{RUBY_VERSION}, #{N} iterations, median of 3 runs"
results.each { |name, ops| puts format("%-24s %14s ops/s", name, ops.round.to_s.reverse.scan(/\d{1,3}/).join(",").reverse) }
puts format("synchronize: UM::Mutex / Mutex = %.2fx", results["synchronize  UM::Mutex"] / results["synchronize  Mutex"])
puts format("push+shift:  UM::Queue / Queue = %.2fx", results["push+shift   UM::Queue"] / results["push+shift   Queue"])
