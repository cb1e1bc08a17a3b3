# frozen_string_literal: true

# TLS throughput over socket pairs: PAIRS connections, on each the client
# sends MESSAGES messages of 16 KiB (one full TLS record each) and the
# server reads them all. Compared:
#
#   threads          stock OpenSSL::SSL::SSLSocket#write/#readpartial, one
#                    Ruby thread per side per pair
#   um ssl_read      UM#ssl_set_bio, then UM#ssl_write/UM#ssl_read, one fiber
#                    per side per pair on one machine
#   um stock         UM#ssl_set_bio, then the socket's own #write and
#                    #readpartial, fibers on one machine
#
# TLS 1.3 with a self-signed EC P-256 certificate; the handshakes are done
# before the clock starts. Each measurement runs 3 times; the run with the
# median wall time is shown, with the process CPU time it used. Run from the
# repository root with:
#
#   bin/ruby benchmark/ssl.rb
#
# UM_BENCH_SCALE (a float, default 1.0) multiplies the message count.

require "uringmachine"
require "openssl"
require "socket"

SCALE = Float(ENV.fetch("UM_BENCH_SCALE", "1.0"))
RUNS = 3
PAIRS = 8
MSG_SIZE = 16 * 1024
MESSAGES = [(4_000 * SCALE).to_i, 1].max # per pair
MSG = ("x" * MSG_SIZE).freeze

def clock(id) = Process.clock_gettime(id)

# A self-signed certificate for the server side.
def make_cert
  key = OpenSSL::PKey::EC.generate("prime256v1")
  cert = OpenSSL::X509::Certificate.new
  cert.version = 2
  cert.serial = 1
  cert.subject = cert.issuer = OpenSSL::X509::Name.parse("/CN=localhost")
  cert.public_key = key
  cert.not_before = Time.now - 60
  cert.not_after = Time.now + 3600
  cert.sign(key, "SHA256")
  [cert, key]
end

CERT, KEY = make_cert

def contexts
  server = OpenSSL::SSL::SSLContext.new
  server.cert = CERT
  server.key = KEY
  client = OpenSSL::SSL::SSLContext.new
  client.verify_mode = OpenSSL::SSL::VERIFY_NONE
  [server, client]
end

# PAIRS [server, client] SSL sockets over UNIX socket pairs, not handshaken.
def ssl_pairs
  sctx, cctx = contexts
  Array.new(PAIRS) do
    a, b = UNIXSocket.pair
    pair = [OpenSSL::SSL::SSLSocket.new(a, sctx), OpenSSL::SSL::SSLSocket.new(b, cctx)]
    pair.each { |ssl| ssl.sync_close = true }
    pair
  end
end

def check(results)
  results.each do |r|
    raise r if r.is_a?(Exception)
    raise "got #{r} bytes, expected #{MESSAGES * MSG_SIZE}" unless r == MESSAGES * MSG_SIZE
  end
end

def close_all(pairs)
  pairs.flatten.each { |ssl| ssl.to_io.close unless ssl.to_io.closed? }
end

# Each implementation: a setup step (sockets and handshakes, not timed)
# returning a job to time.

def threads_setup
  pairs = ssl_pairs
  pairs.map { |server, client| [Thread.new { server.accept }, Thread.new { client.connect }] }.flatten.each(&:join)
  job = lambda do
    threads = pairs.flat_map do |server, client|
      reader = Thread.new do
        buf = +""
        total = 0
        total += server.readpartial(MSG_SIZE, buf).bytesize while total < MESSAGES * MSG_SIZE
        total
      end
      writer = Thread.new { MESSAGES.times { client.write(MSG) } }
      [reader, writer]
    end
    check(threads.each_slice(2).map { |reader, writer| writer.join && reader.value })
  end
  [job, -> { close_all(pairs) }]
end

def um_setup(direct:)
  machine = UM.new
  pairs = ssl_pairs
  pairs.flatten.each { |ssl| machine.ssl_set_bio(ssl) }
  fibers = pairs.flat_map { |server, client| [machine.spin { server.accept }, machine.spin { client.connect }] }
  machine.join(*fibers).each { |r| raise r if r.is_a?(Exception) }
  job = lambda do
    fibers = pairs.flat_map do |server, client|
      reader = machine.spin do
        buf = +""
        total = 0
        while total < MESSAGES * MSG_SIZE
          n = direct ? machine.ssl_read(server, buf, MSG_SIZE) : server.readpartial(MSG_SIZE, buf).bytesize
          raise EOFError if n.zero?

          total += n
        end
        total
      end
      writer = machine.spin do
        MESSAGES.times { direct ? machine.ssl_write(client, MSG) : client.write(MSG) }
      end
      [reader, writer]
    end
    results = machine.join(*fibers)
    results.each_slice(2) { |_, w| raise w if w.is_a?(Exception) }
    check(results.each_slice(2).map(&:first))
  end
  [job, -> { close_all(pairs) }]
end

# Sets up and runs the job RUNS times; returns [wall s, cpu s] of the median
# run.
def measure(setup)
  runs = Array.new(RUNS) do
    job, cleanup = setup.call
    begin
      wall0 = clock(Process::CLOCK_MONOTONIC)
      cpu0 = clock(Process::CLOCK_PROCESS_CPUTIME_ID)
      job.call
      [clock(Process::CLOCK_MONOTONIC) - wall0, clock(Process::CLOCK_PROCESS_CPUTIME_ID) - cpu0]
    ensure
      cleanup.call
    end
  end
  runs.sort_by(&:first)[RUNS / 2]
end

IMPLS = [
  ["threads (stock)", -> { threads_setup }],
  ["um ssl_read/write", -> { um_setup(direct: true) }],
  ["um stock methods", -> { um_setup(direct: false) }],
].freeze

total_messages = PAIRS * MESSAGES
puts "ruby #{RUBY_VERSION}, #{OpenSSL::OPENSSL_LIBRARY_VERSION}, UM_BENCH_SCALE=#{SCALE}, " \
     "#{PAIRS} pairs x #{MESSAGES} messages of #{MSG_SIZE / 1024} KiB, median of #{RUNS} runs"
row = "%-18s %8s %8s %12s %10s"
puts format(row, "impl", "wall s", "cpu s", "messages/s", "MB/s")
rates = IMPLS.map do |name, setup|
  wall, cpu = measure(setup)
  rate = total_messages / wall
  puts format(row, name, format("%.3f", wall), format("%.3f", cpu),
              rate.round.to_s.reverse.scan(/\d{1,3}/).join(",").reverse,
              format("%.1f", total_messages * MSG_SIZE / wall / 1e6))
  [name, rate]
end
puts
base_name, base = rates.first
rates.drop(1).each { |name, rate| puts format("%-18s / %s = %.2fx", name, base_name, rate / base) }
