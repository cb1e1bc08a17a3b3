# frozen_string_literal: true

# Side-by-side measurement of UringMachine fibers against plain Ruby threads:
#
#   snooze           two fibers switching with UM#snooze, against two threads
#                    handing control back and forth through two Queues
#                    (ops = switches).
#   pipe round trip  a 1 KiB message sent over one pipe and echoed back over
#                    another: UM#write/UM#read in two fibers, against
#                    IO#write/IO#readpartial in two threads (ops = round trips).
#
# Each implementation gets its own iteration count (their speeds differ by
# orders of magnitude), so compare ops/s. Each measurement runs 3 times; the
# run with the median wall time is shown, with the process CPU time it used.
# Run from the repository root with:
#
#   bin/ruby benchmark/core.rb
#
# UM_BENCH_SCALE (a float, default 1.0) multiplies the iteration counts.

require "uringmachine"

SCALE = Float(ENV.fetch("UM_BENCH_SCALE", "1.0"))
RUNS = 3
MSG = ("x" * 1024).freeze

# Iteration counts per implementation, sized for ~1-3 s each at scale 1.0
# (the rates differ by orders of magnitude; ops/s stays comparable).
def count(base) = [(base * SCALE).to_i, 1].max

def clock(id) = Process.clock_gettime(id)

# Runs the block RUNS times; returns [ops/s, wall s, cpu s] of the median run.
def measure(ops)
  runs = Array.new(RUNS) do
    wall0 = clock(Process::CLOCK_MONOTONIC)
    cpu0 = clock(Process::CLOCK_PROCESS_CPUTIME_ID)
    yield
    [clock(Process::CLOCK_MONOTONIC) - wall0, clock(Process::CLOCK_PROCESS_CPUTIME_ID) - cpu0]
  end
  wall, cpu = runs.sort_by(&:first)[RUNS / 2]
  [ops / wall, wall, cpu]
end

# snooze

def um_snooze(n)
  m = UM.new
  fibers = Array.new(2) { m.spin { n.times { m.snooze } } }
  m.join(*fibers)
end

def thread_pingpong(n)
  ping = Queue.new
  pong = Queue.new
  a = Thread.new { n.times { ping << 1; pong.pop } }
  b = Thread.new { n.times { ping.pop; pong << 1 } }
  [a, b].each(&:join)
end

# pipe round trip

def um_write_all(m, fd, str)
  left = str
  until left.empty?
    written = m.write(fd, left)
    left = left.byteslice(written..)
  end
end

def um_read_full(m, fd, buf, len)
  buf.clear
  while buf.bytesize < len
    n = m.read(fd, buf, len - buf.bytesize, buf.bytesize)
    raise EOFError, "pipe closed after #{buf.bytesize} of #{len} bytes" if n.zero?
  end
  buf
end

def um_pipe_round_trips(n)
  m = UM.new
  r1, w1 = UM.pipe
  r2, w2 = UM.pipe
  a = m.spin do
    reply = +""
    n.times do
      um_write_all(m, w1, MSG)
      um_read_full(m, r2, reply, MSG.bytesize)
    end
    raise "bad reply" unless reply == MSG
  end
  b = m.spin do
    msg = +""
    n.times do
      um_read_full(m, r1, msg, MSG.bytesize)
      um_write_all(m, w2, msg)
    end
  end
  results = m.join(a, b)
  results.each { |r| raise r if r.is_a?(Exception) }
ensure
  [r1, w1, r2, w2].each { |fd| m.close(fd) if fd }
end

def io_read_full(io, buf, chunk, len)
  buf.clear
  buf << io.readpartial(len - buf.bytesize, chunk) while buf.bytesize < len
  buf
end

def thread_pipe_round_trips(n)
  r1, w1 = IO.pipe
  r2, w2 = IO.pipe
  a = Thread.new do
    reply = +""
    chunk = +""
    n.times do
      w1.write(MSG)
      io_read_full(r2, reply, chunk, MSG.bytesize)
    end
    raise "bad reply" unless reply == MSG
  end
  b = Thread.new do
    msg = +""
    chunk = +""
    n.times do
      io_read_full(r1, msg, chunk, MSG.bytesize)
      w2.write(msg)
    end
  end
  [a, b].each(&:join)
ensure
  [r1, w1, r2, w2].each { |io| io&.close }
end

# Report

# [scenario, [impl, ops per run, job]...]; a snooze of n per side is 2n switches.
SNOOZE_UM = count(5_000_000)
SNOOZE_THREADS = count(75_000)
PIPE_UM = count(150_000)
PIPE_THREADS = count(60_000)
SCENARIOS = [
  ["snooze", [["um", 2 * SNOOZE_UM, -> { um_snooze(SNOOZE_UM) }],
              ["threads", 2 * SNOOZE_THREADS, -> { thread_pingpong(SNOOZE_THREADS) }]]],
  ["pipe round trip", [["um", PIPE_UM, -> { um_pipe_round_trips(PIPE_UM) }],
                       ["threads", PIPE_THREADS, -> { thread_pipe_round_trips(PIPE_THREADS) }]]],
].freeze

puts "ruby #{RUBY_VERSION}, UM_BENCH_SCALE=#{SCALE}, median of #{RUNS} runs"
row = "%-16s %-8s %14s %8s %8s"
puts format(row, "scenario", "impl", "ops/s", "wall s", "cpu s")
ratios = SCENARIOS.map do |name, impls|
  rates = impls.map do |impl, ops, job|
    rate, wall, cpu = measure(ops, &job)
    puts format(row, name, impl, rate.round.to_s.reverse.scan(/\d{1,3}/).join(",").reverse,
                format("%.3f", wall), format("%.3f", cpu))
    rate
  end
  [name, rates[0] / rates[1]]
end
puts
ratios.each { |name, ratio| puts format("%-16s um/threads = %.2fx", name, ratio) }
