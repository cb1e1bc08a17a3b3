# frozen_string_literal: true

require_relative "helper"

# UM::IO takes one read at a time: a reading method called while another is
# in progress on the same UM::IO (from inside a read_each block, or from a
# second fiber while the first waits for data) raises UM::Error, and the
# data stays intact for the reader that holds it.
class UMIOConcurrencyTest < UMTestCase
  READS = {
    "read(0)" => ->(io) { io.read(0) },
    "read(3)" => ->(io) { io.read(3) },
    "read(-3)" => ->(io) { io.read(-3) },
    "read_line" => ->(io) { io.read_line },
    "read_to_delim" => ->(io) { io.read_to_delim(",") },
    "skip" => ->(io) { io.skip(2) },
    "clear" => ->(io) { io.clear },
    "eof?" => ->(io) { io.eof? },
    "read_each" => ->(io) { io.read_each { |_| nil } },
    "resp_read" => ->(io) { io.resp_read },
  }.freeze
  COUNT = ENV["UM_GC_STRESS"] == "1" ? 20 : 200

  def guard(&block)
    @machine.timeout(10, Timeout::Error, &block)
  end

  def test_reads_inside_read_each_raise
    READS.each do |name, call|
      r, w = pipe
      io = @machine.io(r)
      @machine.write(w, "abc,def\n")
      @machine.close(w)
      chunks = []
      errors = []
      guard do
        io.read_each do |buf|
          chunks << buf.get_string
          begin
            call.(io)
          rescue UM::Error => e
            errors << e
          end
          # The view is still valid after the refused call.
          chunks << buf.get_string
        end
      end
      assert_equal ["abc,def\n", "abc,def\n"], chunks, name
      assert_equal 1, errors.size, "#{name} inside read_each"
      assert_match(/read_each/, errors.first.message)
      assert_equal 8, io.consumed, name
      assert_equal 0, @machine.metrics[:buffers_in_use], name
    end
  end

  def test_second_fiber_reading_raises
    READS.each do |name, call|
      r, w = pipe
      io = @machine.io(r)
      first = @machine.spin { io.read_line }
      @machine.snooze # first now waits for data
      error = assert_raises(UM::Error, name) { guard { call.(io) } }
      assert_match(/read_line/, error.message)
      @machine.write(w, "line one\nrest")
      assert_equal "line one", guard { @machine.join(first) }, name
      assert_equal "rest", io.read(4), name
    end
  end

  def test_fibers_taking_turns_share_one_io
    r, w = pipe
    io = @machine.io(r)
    lines = []
    readers = 4.times.map do
      @machine.spin do
        loop do
          line = io.read_line
          break unless line
          lines << line
          @machine.snooze
        rescue UM::Error
          @machine.sleep(0.0005) # another fiber holds the IO: try again later
        end
      end
    end
    writer = @machine.spin do
      COUNT.times { |i| @machine.write(w, "line #{i}\n") }
      @machine.close(w)
    end
    guard { @machine.join(writer, *readers) }
    assert_equal COUNT.times.map { |i| "line #{i}" }, lines
  end

  def test_io_usable_after_refused_call_and_exception_in_read_each
    r, w = pipe
    io = @machine.io(r)
    @machine.write(w, "one\ntwo\n")
    assert_raises(RuntimeError) { io.read_each { |_| raise "boom" } }
    # The chunk given to the block was consumed; the IO is free again.
    @machine.write(w, "three\n")
    assert_equal "three", guard { io.read_line }
  end
end
