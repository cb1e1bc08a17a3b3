# frozen_string_literal: true

require_relative "helper"

# Many connections read through UM::IO at once: the provided-buffer pool
# runs short, and no data may be lost nor the pool grow without bound.
class UMIOManyConnectionsTest < UMTestCase
  CONNECTIONS = 1000
  LINES = 100
  # 1,000 connections must not need more pool memory than this (half the
  # capacity: a pool that grew once per waiting reader would reach it).
  POOL_BOUND = 8 * 1024 * 1024

  def line(conn, i)
    "connection #{conn} line #{i} #{'x' * (i * 37 % 400)}"
  end

  def test_thousand_connections_read_lines
    before = @machine.metrics
    pairs = CONNECTIONS.times.map { socketpair }
    received = Array.new(CONNECTIONS) { [] }
    errors = []
    readers = pairs.each_with_index.map do |(_, b), c|
      @machine.spin do
        io = @machine.io(b)
        while (l = io.read_line)
          received[c] << l
        end
      rescue StandardError => e
        errors << e
      end
    end
    rng = Random.new(1)
    writers = pairs.each_with_index.map do |(a, _), c|
      data = LINES.times.map { |i| "#{line(c, i)}\n" }.join
      pieces = []
      pos = 0
      while pos < data.bytesize
        n = rng.rand(1..4000)
        pieces << data.byteslice(pos, n)
        pos += n
      end
      @machine.spin do
        pieces.each do |piece|
          @machine.write(a, piece)
          @machine.sleep(rng.rand(0.0005..0.003))
        end
        @machine.close(a)
      end
    end
    peak = 0
    watcher = @machine.spin do
      until readers.all?(&:done?)
        m = @machine.metrics
        peak = [peak, m[:buffers] * m[:buffer_size]].max
        @machine.sleep(0.005)
      end
    end
    @machine.timeout(120, Timeout::Error) { @machine.join(*writers, *readers, watcher) }
    after = @machine.metrics
    pool_bytes = after[:buffers] * after[:buffer_size]
    puts "\n  pool before: #{before[:buffers]} x #{before[:buffer_size]} B; " \
         "after: #{after[:buffers]} x #{after[:buffer_size]} B = #{pool_bytes / 1024} KiB " \
         "(grows: #{after[:buffer_grows]}, peak #{peak / 1024} KiB)" if ENV["UM_VERBOSE"]

    assert_equal [], errors.map { |e| "#{e.class}: #{e.message}" }.uniq
    total = received.sum(&:size)
    assert_equal CONNECTIONS * LINES, total, "lines received"
    received.each_with_index do |lines, c|
      assert_equal LINES.times.map { |i| line(c, i) }, lines, "connection #{c}"
    end
    assert_operator pool_bytes, :<=, POOL_BOUND, "pool memory"
    assert_equal 0, after[:buffers_in_use]
  end
end

# The pool runs out: 1,500 connections each hold a line longer than a
# remainder UM::IO moves out of the pool, 18 MiB in all, more than the
# pool's capacity. Readers past that read into memory of their own.
class UMIOPoolExhaustedTest < UMTestCase
  CONNECTIONS = 1500
  LINE = 12_000

  def test_exhausted_pool_loses_nothing
    pairs = CONNECTIONS.times.map { socketpair }
    errors = []
    lines = Array.new(CONNECTIONS)
    readers = pairs.each_with_index.map do |(_, b), c|
      @machine.spin do
        io = @machine.io(b)
        lines[c] = [io.read_line, io.read_line, io.read_line]
      rescue StandardError => e
        errors << e
      end
    end
    body = ->(c) { format("%05d", c) * (LINE / 5) }
    writers = pairs.each_with_index.map do |(a, _), c|
      @machine.spin do
        @machine.write(a, body.(c))
        @machine.sleep(0.2) # every reader now holds a partial line
        @machine.write(a, "\ntail #{c}\n")
        @machine.close(a)
      end
    end
    @machine.timeout(120, Timeout::Error) { @machine.join(*writers, *readers) }
    m = @machine.metrics
    puts "\n  exhausted pool: #{m[:buffers]} x #{m[:buffer_size]} B, exhausted #{m[:buffer_exhausted]} times" if ENV["UM_VERBOSE"]
    assert_equal [], errors.map { |e| "#{e.class}: #{e.message}" }.uniq
    lines.each_with_index { |l, c| assert_equal [body.(c), "tail #{c}", nil], l, "connection #{c}" }
    assert_operator m[:buffer_exhausted], :>, 0, "the pool was never exhausted: the test tests nothing"
    assert_operator m[:buffer_pool_bytes], :<=, m[:buffer_capacity] * m[:buffer_size]
    assert_equal 0, m[:buffers_in_use]
  end
end
