# frozen_string_literal: true

# UringMachine's main job in one process: an echo "server" and many clients,
# all of them fibers on one machine, all their I/O going through io_uring.
#
#   bin/ruby examples/echo_demo.rb [CLIENTS] [MESSAGES]
#
# Each client is connected to the server through its own UNIX socketpair
# (no network needed). For each pair a server fiber echoes back everything
# it reads until EOF, and a client fiber sends MESSAGES messages of 1 KiB,
# reads each echo back in full and checks it byte for byte. A last fiber
# shows a timeout at work: it waits on a read nobody will ever answer and
# is cut off after 0.1 s. Exits 1 if any echo mismatched or anything failed.

require "uringmachine"
require "timeout"

MESSAGE_SIZE = 1024
READ_SIZE = 65_536
TIMEOUT = 0.1

def usage!(message)
  warn "#{$PROGRAM_NAME}: #{message}"
  warn "usage: #{$PROGRAM_NAME} [CLIENTS] [MESSAGES]   (defaults: 200 200)"
  exit 2
end

def count_arg(arg, default, name)
  return default if arg.nil?

  n = Integer(arg, exception: false)
  usage!("#{name} must be a positive integer, not #{arg.inspect}") unless n&.positive?
  n
end

usage!("too many arguments") if ARGV.size > 2
CLIENTS = count_arg(ARGV[0], 200, "CLIENTS")
MESSAGES = count_arg(ARGV[1], 200, "MESSAGES")

# Two fds per client, plus a few: raise the soft fd limit if needed.
def ensure_fd_limit(needed)
  soft, hard = Process.getrlimit(:NOFILE)
  return if soft >= needed
  raise "#{needed} file descriptors needed, the hard limit is #{hard}" if hard != Process::RLIM_INFINITY && hard < needed

  Process.setrlimit(:NOFILE, needed, hard)
end
ensure_fd_limit(CLIENTS * 2 + 64)

# Writes all of +data+, looping over partial writes.
def write_all(machine, fd, data)
  written = 0
  while written < data.bytesize
    chunk = written.zero? ? data : data.byteslice(written..)
    written += machine.write(fd, chunk)
  end
  written
end

# Server side of one connection: echoes until EOF, then closes its end.
# Returns the number of bytes echoed.
def echo_server(machine, fd)
  buf = String.new(capacity: READ_SIZE, encoding: Encoding::BINARY)
  echoed = 0
  loop do
    n = machine.read(fd, buf, READ_SIZE)
    break if n.zero?

    echoed += write_all(machine, fd, buf)
  end
  echoed
ensure
  machine.close(fd)
end

# One message: a readable header, then bytes that differ per message.
def message(rng, client_id, index)
  header = format("client %05d message %06d|", client_id, index).b
  header + rng.bytes(MESSAGE_SIZE - header.bytesize)
end

# Client side: sends the messages one at a time, reads each echo back in
# full and compares it. Closes its end when done. Returns mismatches.
def echo_client(machine, fd, client_id)
  rng = Random.new(client_id)
  buf = String.new(capacity: MESSAGE_SIZE, encoding: Encoding::BINARY)
  mismatches = 0
  MESSAGES.times do |i|
    msg = message(rng, client_id, i)
    machine.writev(fd, msg) # writev writes everything
    buf.clear
    while buf.bytesize < MESSAGE_SIZE
      # buffer_offset -1: append to what was read so far
      n = machine.read(fd, buf, MESSAGE_SIZE - buf.bytesize, -1)
      raise EOFError, "client #{client_id}: EOF after #{buf.bytesize} bytes of message #{i}" if n.zero?
    end
    next if buf == msg

    mismatches += 1
    warn "client #{client_id}: echo of message #{i} mismatched" if mismatches <= 3
  end
  mismatches
ensure
  machine.close(fd)
end

# A read nobody answers, cut off by a timeout.
def timeout_demo(machine)
  a, b = UM.socketpair(UM::AF_UNIX, UM::SOCK_STREAM, 0)
  buf = +""
  t0 = Process.clock_gettime(Process::CLOCK_MONOTONIC)
  begin
    machine.timeout(TIMEOUT, Timeout::Error) { machine.read(a, buf, 100) }
    [:not_cut_off, Process.clock_gettime(Process::CLOCK_MONOTONIC) - t0]
  rescue Timeout::Error => e
    [e, Process.clock_gettime(Process::CLOCK_MONOTONIC) - t0]
  end
ensure
  machine.close(a) if a
  machine.close(b) if b
end

m = UM.new
started = Process.clock_gettime(Process::CLOCK_MONOTONIC)

timeout_fiber = m.spin { timeout_demo(m) }

servers = []
clients = []
CLIENTS.times do |id|
  client_fd, server_fd = UM.socketpair(UM::AF_UNIX, UM::SOCK_STREAM, 0)
  servers << m.spin { echo_server(m, server_fd) }
  clients << m.spin { echo_client(m, client_fd, id) }
end

client_results = m.join(*clients)
server_results = m.join(*servers)
server_results = [server_results] unless server_results.is_a?(Array)
client_results = [client_results] unless client_results.is_a?(Array)
elapsed = Process.clock_gettime(Process::CLOCK_MONOTONIC) - started
timeout_result, waited = m.join(timeout_fiber)

failures = (client_results + server_results).grep(Exception)
mismatches = client_results.grep(Integer).sum
echoed = server_results.grep(Integer).sum
expected = CLIENTS * MESSAGES * MESSAGE_SIZE
total_messages = CLIENTS * MESSAGES

puts "UringMachine echo demo (#{UM::VERSION}, Ruby #{RUBY_VERSION}, kernel #{UM.kernel_version / 100}.#{UM.kernel_version % 100})"
puts "  clients:         #{CLIENTS} (one socketpair, one server fiber and one client fiber each)"
puts "  messages:        #{total_messages} (#{MESSAGES} per client, #{MESSAGE_SIZE} bytes each)"
puts "  bytes echoed:    #{echoed} (expected #{expected})"
puts "  mismatches:      #{mismatches}"
puts "  failed fibers:   #{failures.size}"
failures.first(3).each { |e| puts "    #{e.class}: #{e.message}" }
puts format("  elapsed:         %.3f s", elapsed)
puts format("  throughput:      %.0f messages/s, %.1f MB/s echoed", total_messages / elapsed, echoed / elapsed / 1e6)

timed_out = timeout_result.is_a?(Timeout::Error)
if timed_out
  puts format("  timeout:         a read with nothing to read, under timeout(%.1f), was cut off after %.3f s (%s: %s)",
              TIMEOUT, waited, timeout_result.class, timeout_result.message)
else
  puts "  timeout:         NOT cut off as expected: #{timeout_result.inspect}"
end

metrics = m.metrics
puts "  machine metrics:"
metrics.each { |key, value| puts format("    %-16s %s", key, value) }

ok = failures.empty? && mismatches.zero? && echoed == expected && timed_out
puts ok ? "OK" : "FAILED"
exit(ok ? 0 : 1)
