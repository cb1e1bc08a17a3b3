# frozen_string_literal: true

require "socket"
require "uringmachine"
require_relative "workloads"

module Bench
  # The machine's own API: one fiber per unit made with UM#spin, I/O through
  # UM#read/#write/#send/#recv on raw fds, UM::Mutex and UM::Queue.
  class UMMachine
    # One machine for every round, as an application keeps one per thread.
    def initialize
      @m = UM.new
    end

    def pipe(groups:, count:)
      stream(Array.new(groups) { UM.pipe }, count, socket: false)
    end

    def socketpair(groups:, count:)
      pairs = Array.new(groups) { UM.socketpair(UM::AF_UNIX, UM::SOCK_STREAM, 0) }
      stream(pairs, count, socket: true)
    end

    def mutex_cpu(groups:, workers:, count:)
      run(groups, workers) do |m, mutex|
        count.times { m.synchronize(mutex) { Bench.match! } }
      end
      groups * workers * count
    end

    def mutex_io(groups:, workers:, count:, dir:)
      m = @m
      paths = Array.new(groups) { |i| File.join(dir, "group#{i}") }
      fds = paths.map { m.open(it, UM::O_WRONLY | UM::O_CREAT | UM::O_TRUNC, 0o644) }
      fibers = fds.flat_map do |fd|
        mutex = UM::Mutex.new
        Array.new(workers) do
          m.spin { count.times { m.synchronize(mutex) { write_all(m, fd, MSG, false) } } }
        end
      end
      join(m, fibers)
      paths.each { Bench.check_size!(it, File.size(it), workers * count * MSG_SIZE) }
      groups * workers * count
    ensure
      fds&.each { m.close(it) }
    end

    def queue(groups:, producers:, consumers:, count:)
      m = @m
      fibers = Array.new(groups) do
        queue = UM::Queue.new
        per_consumer = Bench.share(producers * count, consumers)
        Array.new(producers) { m.spin { count.times { m.push(queue, it) } } } +
          Array.new(consumers) { m.spin { per_consumer.times { m.shift(queue) } } }
      end
      join(m, fibers.flatten)
      groups * producers * count
    end

    # TLS with UM#ssl_set_bio, then UM#ssl_read/#ssl_write.
    def ssl(groups:, count:)
      m = @m
      pairs = Array.new(groups) { TLS.pair.each { m.ssl_set_bio(it) } }
      size = TLS::RECORD.bytesize
      received = Array.new(groups, 0)
      fibers = pairs.each_with_index.flat_map do |(server, client), i|
        [
          m.spin do
            server.accept
            buf = String.new(capacity: size)
            while received[i] < count * size
              n = m.ssl_read(server, buf, size)
              raise Failure, "EOF after #{received[i]} bytes" if n.zero?
              received[i] += n
            end
          end,
          m.spin { client.connect; count.times { m.ssl_write(client, TLS::RECORD) } }
        ]
      end
      join(m, fibers)
      received.sum / size
    ensure
      TLS.close(pairs)
    end

    def snooze(count:)
      m = @m
      join(m, Array.new(2) { m.spin { count.times { m.snooze } } })
      2 * count
    end

    private

    def run(groups, workers)
      m = @m
      fibers = Array.new(groups) do
        mutex = UM::Mutex.new
        Array.new(workers) { m.spin { yield m, mutex } }
      end
      join(m, fibers.flatten)
    end

    # One writer and one reader fiber per fd pair, using send/recv on sockets
    # and write/read otherwise. Returns messages received.
    def stream(pairs, count, socket:)
      m = @m
      total = count * MSG_SIZE
      received = Array.new(pairs.size, 0)
      fibers = pairs.each_with_index.flat_map do |(r, w), i|
        [
          m.spin { count.times { write_all(m, w, MSG, socket) } },
          m.spin do
            buf = String.new(capacity: MSG_SIZE)
            while received[i] < total
              n = socket ? m.recv(r, buf, MSG_SIZE, 0) : m.read(r, buf, MSG_SIZE)
              raise Failure, "EOF after #{received[i]} of #{total} bytes" if n.zero?
              received[i] += n
            end
          end
        ]
      end
      join(m, fibers)
      received.sum / MSG_SIZE
    ensure
      pairs.flatten.each { m.close(it) }
    end

    # A write may be partial on a stream socket: the rest follows.
    def write_all(m, fd, buf, socket)
      n = 0
      while n < buf.bytesize
        rest = n.zero? ? buf : buf.byteslice(n..)
        n += socket ? m.send(fd, rest, rest.bytesize, 0) : m.write(fd, rest)
      end
    end

    def join(m, fibers)
      m.join(*fibers).each { raise it if it.is_a?(Exception) }
    end
  end
end
