# frozen_string_literal: true

require_relative "helper"

# Many connections read through UM::IO at once: the provided-buffer pool
# runs short, and no data may be lost nor the pool grow without bound.
class UMIOManyConnectionsTest < UMTestCase
  CONNECTIONS = 1000
  LINES = 100
  # 1,000 idle connections must not need more pool memory than this.
  POOL_BOUND = 16 * 1024 * 1024

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
