# frozen_string_literal: true

require_relative "helper"

# The machine's core under GC.stress and under compaction: buffers of
# in-flight operations must stay alive and unmoved until their completion.
class GCSafetyTest < UMTestCase
  def with_gc_stress
    GC.stress = true
    yield
  ensure
    GC.stress = false
  end

  def test_pipe_traffic_under_gc_stress
    r, w = pipe
    with_gc_stress do
      reader = @machine.spin do
        out = +""
        @machine.read(r, out, 100, -1) while out.bytesize < 30
        out
      end
      writer = @machine.spin { 3.times { |i| @machine.write(w, "#{i}" * 10) } }
      @machine.join(writer)
      assert_equal "000000000011111111112222222222", @machine.join(reader)
    end
  end

  def test_cancellation_under_gc_stress
    r, w = pipe
    with_gc_stress do
      buf = +"keep"
      assert_raises(Timeout::Error) do
        @machine.timeout(0.005, Timeout::Error) { @machine.read(r, buf, 10, -1) }
      end
      @machine.write(w, "x")
      assert_equal "keep", buf
    end
  end

  def test_other_ops_under_gc_stress
    r, w = pipe
    with_gc_stress do
      assert_equal 6, @machine.writev(w, "ab", "cd", "ef")
      @machine.write_async(w, "gh")
      st = @machine.statx(UM::AT_FDCWD, __FILE__, 0, UM::STATX_ALL)
      assert_equal File.size(__FILE__), st[:size]
      op = @machine.prep_timeout(0.001)
      assert_equal(-UM::ETIME, op.await)
      out = +""
      @machine.read(r, out, 100, -1) while out.bytesize < 8
      assert_equal "abcdefgh", out
      fibers = 20.times.map { |i| @machine.spin { @machine.sleep(0.0001); i } }
      assert_equal 20.times.to_a, @machine.join(*fibers)
    end
  end

  # Short (embedded) String buffers live inside their object slot: moving
  # the object while a read is in flight would send the data elsewhere.
  def test_compaction_with_reads_in_flight
    pipes = 20.times.map { pipe }
    readers = pipes.map do |r, _|
      @machine.spin do
        buf = +"" # embedded
        @machine.read(r, buf, 8)
        buf
      end
    end
    @machine.snooze
    GC.verify_compaction_references(expand_heap: true, toward: :empty)
    pipes.each_with_index { |(_, w), i| @machine.write(w, format("%08d", i)) }
    assert_equal 20.times.map { |i| format("%08d", i) }, @machine.join(*readers)
  end

  def test_compaction_with_writes_and_timers_in_flight
    r, w = pipe
    10.times { |i| @machine.write_async(w, "w#{i}") }
    timer = @machine.prep_timeout(0.01)
    sleeper = @machine.spin { @machine.sleep(0.01); :slept }
    GC.verify_compaction_references(expand_heap: true, toward: :empty)
    assert_equal :slept, @machine.join(sleeper)
    assert_equal(-UM::ETIME, timer.await)
    out = +""
    @machine.read(r, out, 100, -1) while out.bytesize < 20
    assert_equal 10.times.map { |i| "w#{i}" }.join, out
  end

  def test_auto_compaction
    old = GC.auto_compact
    GC.auto_compact = true
    r, w = pipe
    readers = 10.times.map { spin_reader(r, 1) }
    @machine.snooze
    GC.start(full_mark: true, immediate_sweep: true)
    GC.compact
    @machine.write(w, "abcdefghij")
    assert_equal "abcdefghij", @machine.join(*readers).sort.join
  ensure
    GC.auto_compact = old
  end
end
