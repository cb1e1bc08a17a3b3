# frozen_string_literal: true

# The work every scenario does, written once against core Ruby classes
# (IO, Queue, Mutex). An implementation supplies only how concurrent units
# run: `run_units(procs)` starts one unit per proc (a thread or a fiber) and
# returns when all have finished, raising the first error a unit raised.
#
# Each scenario method returns the number of operations it performed, which
# the harness checks against the number it asked for.
require_relative "tls"

module Bench
  MSG_SIZE = 1024
  MSG = ("x" * MSG_SIZE).freeze
  TEXT = "order 12345-alice@example.org shipped on 2026-12-01 to Tel Aviv"
  PATTERN = /(\d+)-(\w+)@example\.(com|org) shipped on (\d{4})-(\d\d)-(\d\d)/

  # Raised when a scenario's own checks fail (short reads, bad matches).
  class Failure < StandardError; end

  module Workloads
    def pipe(groups:, count:) = stream(groups, count) { IO.pipe }

    def socketpair(groups:, count:) = stream(groups, count) { UNIXSocket.pair }

    def mutex_cpu(groups:, workers:, count:)
      units = Array.new(groups) do
        mutex = Mutex.new
        Array.new(workers) do
          -> { count.times { mutex.synchronize { Bench.match! } } }
        end
      end
      run_units(units.flatten)
      groups * workers * count
    end

    def mutex_io(groups:, workers:, count:, dir:)
      files = Array.new(groups) { |i| File.open(File.join(dir, "group#{i}"), "w").tap { it.sync = true } }
      units = files.flat_map do |file|
        mutex = Mutex.new
        Array.new(workers) do
          -> { count.times { mutex.synchronize { file.write(MSG) } } }
        end
      end
      run_units(units)
      files.each { Bench.check_size!(it.path, it.size, workers * count * MSG_SIZE) }
      groups * workers * count
    ensure
      files&.each(&:close)
    end

    def queue(groups:, producers:, consumers:, count:)
      units = Array.new(groups) do
        queue = Queue.new
        per_consumer = Bench.share(producers * count, consumers)
        Array.new(producers) { -> { count.times { queue << it } } } +
          Array.new(consumers) { -> { per_consumer.times { queue.pop } } }
      end
      run_units(units.flatten)
      groups * producers * count
    end

    # TLS: per group a server reading `count` 16 KiB records a client writes,
    # with the stock OpenSSL::SSL::SSLSocket methods; the handshakes are part
    # of the round.
    def ssl(groups:, count:)
      pairs = Array.new(groups) { TLS.pair }
      total = count * TLS::RECORD.bytesize
      received = Array.new(groups, 0)
      units = pairs.each_with_index.flat_map do |(server, client), i|
        [
          -> {
            server.accept
            buf = String.new(capacity: TLS::RECORD.bytesize)
            received[i] += server.readpartial(TLS::RECORD.bytesize, buf).bytesize while received[i] < total
          },
          -> { client.connect; count.times { client.write(TLS::RECORD) } }
        ]
      end
      run_units(units)
      received.sum / TLS::RECORD.bytesize
    ensure
      TLS.close(pairs)
    end

    # Two units handing control to each other through two queues; every
    # hand-off is one switch.
    def snooze(count:)
      ping = Queue.new
      pong = Queue.new
      run_units([
        -> { count.times { ping << 1; pong.pop } },
        -> { count.times { ping.pop; pong << 1 } }
      ])
      2 * count
    end

    private

    # One writer and one reader per pair of IOs the block makes (a reader and
    # a writer end); returns messages received.
    def stream(groups, count)
      pairs = Array.new(groups) { yield }
      total = count * MSG_SIZE
      received = Array.new(pairs.size, 0)
      units = pairs.each_with_index.flat_map do |(r, w), i|
        [
          -> { count.times { w.write(MSG) } },
          -> {
            buf = String.new(capacity: MSG_SIZE)
            received[i] += r.readpartial(MSG_SIZE, buf).bytesize while received[i] < total
          }
        ]
      end
      run_units(units)
      received.sum / MSG_SIZE
    ensure
      pairs&.flatten&.each { |io| io.close unless io.closed? }
    end
  end

  def self.match!
    PATTERN.match(TEXT) or raise Failure, "the pattern did not match"
  end

  def self.check_size!(path, size, expected)
    raise Failure, "#{path} holds #{size} bytes, not #{expected}" unless size == expected
  end

  def self.share(total, parts)
    raise ArgumentError, "#{total} items cannot be split among #{parts} consumers" unless (total % parts).zero?
    total / parts
  end
end
