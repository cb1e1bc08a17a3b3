# frozen_string_literal: true

require_relative "helper"

class RegisteredBuffersTest < UMTestCase
  def setup
    super
    @dir = Dir.mktmpdir("um-regbuf")
  end

  def teardown
    # Unlocks whatever a test left registered (and checks nothing is pending).
    begin
      @machine.unregister_buffers
    rescue UM::Error
      nil
    end
    FileUtils.rm_rf(@dir)
    super
  end

  def path(name) = File.join(@dir, name)

  def test_register_returns_count_and_locks
    a = IO::Buffer.new(16)
    b = IO::Buffer.new(32)
    assert_equal 2, @machine.register_buffers([a, b])
    assert a.locked?
    assert b.locked?
    assert_nil @machine.unregister_buffers
    refute a.locked?
    refute b.locked?
  end

  def test_unregister_without_registration
    assert_nil @machine.unregister_buffers
    assert_nil @machine.unregister_buffers
  end

  def test_read_write_through_pipe
    r, w = pipe
    src = IO::Buffer.new(8)
    dst = IO::Buffer.new(16)
    @machine.register_buffers([dst, src])
    src.set_string("hello")

    assert_equal 5, @machine.write_fixed(w, 1, 5)
    assert_equal 5, @machine.read_fixed(r, 0, 5, 3)
    assert_equal "hello", dst.get_string(3, 5)
    assert_equal "\0\0\0", dst.get_string(0, 3)

    # Part of a buffer, by offset.
    assert_equal 3, @machine.write_fixed(w, 1, 3, 2)
    assert_equal 3, @machine.read_fixed(r, 0, 3)
    assert_equal "llo", dst.get_string(0, 3)
  end

  def test_default_lengths
    r, w = pipe
    src = IO::Buffer.new(6)
    dst = IO::Buffer.new(64)
    @machine.register_buffers([src, dst])
    src.set_string("abcdef")

    # len nil: to the end of the buffer (from the offset).
    assert_equal 6, @machine.write_fixed(w, 0)
    assert_equal 4, @machine.write_fixed(w, 0, nil, 2)
    # maxlen nil: up to the end of the buffer.
    assert_equal 10, @machine.read_fixed(r, 1, nil, 50)
    assert_equal "abcdefcdef", dst.get_string(50, 10)
  end

  def test_read_eof
    r, w = pipe
    buf = IO::Buffer.new(8)
    @machine.register_buffers([buf])
    @machine.close(w)
    assert_equal 0, @machine.read_fixed(r, 0)
  end

  def test_file_with_offsets
    buf = IO::Buffer.new(32)
    @machine.register_buffers([buf])
    buf.set_string("0123456789")

    fd = track_fd(@machine.open(path("f"), UM::O_CREAT | UM::O_RDWR))
    assert_equal 10, @machine.write_fixed(fd, 0, 10, 0, 0)
    assert_equal 4, @machine.write_fixed(fd, 0, 4, 2, 20) # a hole at 10...20
    assert_equal 24, File.size(path("f"))
    assert_equal "0123456789" + ("\0" * 10) + "2345", File.binread(path("f"))

    buf.clear
    assert_equal 3, @machine.read_fixed(fd, 0, 3, 0, 5)
    assert_equal "567", buf.get_string(0, 3)
    assert_equal 4, @machine.read_fixed(fd, 0, 10, 10, 20) # short: end of file
    assert_equal "2345", buf.get_string(10, 4)
    assert_equal 0, @machine.read_fixed(fd, 0, 10, 0, 100)
  end

  def test_file_current_position
    buf = IO::Buffer.new(8)
    @machine.register_buffers([buf])
    File.binwrite(path("g"), "abcdefgh")
    fd = track_fd(@machine.open(path("g"), UM::O_RDONLY))
    assert_equal 3, @machine.read_fixed(fd, 0, 3)
    assert_equal 3, @machine.read_fixed(fd, 0, 3, 3)
    assert_equal "abcdef", buf.get_string(0, 6)
  end

  def test_no_registration_raises
    r, w = pipe
    assert_raises(UM::Error) { @machine.read_fixed(r, 0) }
    assert_raises(UM::Error) { @machine.write_fixed(w, 0) }
    @machine.register_buffers([IO::Buffer.new(4)])
    @machine.unregister_buffers
    e = assert_raises(UM::Error) { @machine.read_fixed(r, 0, 1) }
    assert_match(/register/, e.message)
    assert_equal 0, @machine.register_buffers([])
    assert_raises(UM::Error) { @machine.write_fixed(w, 0, 1) }
  end

  def test_index_and_bounds_errors
    r, w = pipe
    @machine.register_buffers([IO::Buffer.new(8), IO::Buffer.new(4)])

    assert_raises(ArgumentError) { @machine.read_fixed(r, 2) }
    assert_raises(ArgumentError) { @machine.write_fixed(w, 2) }
    assert_raises(ArgumentError) { @machine.read_fixed(r, -1) }
    assert_raises(ArgumentError) { @machine.read_fixed(r, 1 << 40) }
    assert_raises(ArgumentError) { @machine.read_fixed(r, 1, 5) }
    assert_raises(ArgumentError) { @machine.write_fixed(w, 1, 5) }
    assert_raises(ArgumentError) { @machine.read_fixed(r, 0, 4, 5) }
    assert_raises(ArgumentError) { @machine.write_fixed(w, 0, 1, 8) }
    assert_raises(ArgumentError) { @machine.read_fixed(r, 0, nil, 9) }
    assert_raises(ArgumentError) { @machine.read_fixed(r, 0, 1, -1) }
    assert_raises(ArgumentError) { @machine.read_fixed(r, 0, -1) }
    assert_raises(ArgumentError) { @machine.read_fixed(r, 0, 1, 0, -2) }
    assert_raises(ArgumentError) { @machine.read_fixed(r) }
    assert_raises(ArgumentError) { @machine.read_fixed(r, 0, 1, 0, 0, 0) }

    # At the very end: nothing to transfer, but valid.
    assert_equal 0, @machine.write_fixed(w, 0, nil, 8)
    assert_equal 0, @machine.write_fixed(w, 0, 0, 8)

    # Nothing was left behind: the registration can be dropped.
    assert_no_pending_ops
    assert_nil @machine.unregister_buffers
  end

  def test_kernel_errors
    r, w = pipe
    @machine.register_buffers([IO::Buffer.new(8)])
    e = assert_raises(Errno::EBADF) { @machine.read_fixed(w, 0) }
    assert_match(/read_fixed/, e.message)
    e = assert_raises(Errno::EBADF) { @machine.write_fixed(r, 0) }
    assert_match(/write_fixed/, e.message)
    assert_nil @machine.unregister_buffers
  end

  def test_wrong_types
    r, _w = pipe
    buf = IO::Buffer.new(8)
    assert_raises(TypeError) { @machine.register_buffers(buf) }
    assert_raises(TypeError) { @machine.register_buffers(nil) }
    e = assert_raises(TypeError) { @machine.register_buffers([buf, +"string"]) }
    assert_match(/buffers\[1\].*String/, e.message)
    assert_raises(TypeError) { @machine.register_buffers([nil]) }
    assert_raises(TypeError) { @machine.register_buffers([42]) }
    refute buf.locked?, "a refused registration locks nothing"

    @machine.register_buffers([buf])
    assert_raises(TypeError) { @machine.read_fixed("0", 0) }
    assert_raises(TypeError) { @machine.read_fixed(r, "0") }
    assert_raises(TypeError) { @machine.read_fixed(r, 0, "1") }
    assert_raises(TypeError) { @machine.read_fixed(r, 0, 1, "0") }
    assert_raises(TypeError) { @machine.read_fixed(r, 0, 1, 0, "0") }
    assert_raises(TypeError) { @machine.write_fixed(r, 0.5) }
  end

  def test_bad_buffer_lists
    a = IO::Buffer.new(8)
    assert_raises(ArgumentError) { @machine.register_buffers([a, a]) }
    assert_raises(ArgumentError) { @machine.register_buffers([IO::Buffer.new(0)]) }
    freed = IO::Buffer.new(8)
    freed.free
    assert_raises(ArgumentError) { @machine.register_buffers([freed]) }
    refute a.locked?
  end

  def test_refused_list_keeps_previous_registration
    r, w = pipe
    a = IO::Buffer.new(8)
    @machine.register_buffers([a])
    assert_raises(TypeError) { @machine.register_buffers([IO::Buffer.new(8), "str"]) }
    assert a.locked?
    @machine.write(w, "ok")
    assert_equal 2, @machine.read_fixed(r, 0, 2)
    assert_equal "ok", a.get_string(0, 2)
  end

  def test_buffer_locked_by_someone_else
    a = IO::Buffer.new(8)
    b = IO::Buffer.new(8)
    b.locked do
      assert_raises(IO::Buffer::LockedError) { @machine.register_buffers([a, b]) }
    end
    refute a.locked?, "buffers locked before the failure are unlocked again"
    assert_raises(UM::Error) { @machine.read_fixed(0, 0) }
  end

  def test_reregistration_replaces
    r, w = pipe
    a = IO::Buffer.new(8)
    b = IO::Buffer.new(8)
    c = IO::Buffer.new(8)
    assert_equal 2, @machine.register_buffers([a, b])
    assert_equal 2, @machine.register_buffers([c, a]) # a registered again
    refute b.locked?
    assert a.locked?
    assert c.locked?

    @machine.write(w, "xy")
    assert_equal 2, @machine.read_fixed(r, 0, 2)
    assert_equal "xy", c.get_string(0, 2)
    @machine.write(w, "zw")
    assert_equal 2, @machine.read_fixed(r, 1, 2)
    assert_equal "zw", a.get_string(0, 2)
    assert_raises(ArgumentError) { @machine.read_fixed(r, 2, 1) }

    assert_equal 1, @machine.register_buffers([b])
    refute a.locked?
    refute c.locked?
    assert b.locked?
  end

  def test_caller_array_is_copied
    r, w = pipe
    a = IO::Buffer.new(8)
    list = [a]
    @machine.register_buffers(list)
    list << IO::Buffer.new(8)
    list.clear
    @machine.write(w, "q")
    assert_equal 1, @machine.read_fixed(r, 0, 1)
    assert_raises(ArgumentError) { @machine.read_fixed(r, 1, 1) }
    assert_equal "q", a.get_string(0, 1)
  end

  def test_buffer_locked_while_registered
    a = IO::Buffer.new(16)
    @machine.register_buffers([a])
    assert_raises(IO::Buffer::LockedError) { a.resize(64) }
    assert_raises(IO::Buffer::LockedError) { a.free }
    assert_raises(IO::Buffer::LockedError) { a.transfer }
    assert_raises(IO::Buffer::LockedError) { a.locked { nil } }
    assert_equal 16, a.size

    @machine.unregister_buffers
    a.resize(64)
    assert_equal 64, a.size
  end

  def test_registered_buffer_refused_by_plain_read
    r, w = pipe
    a = IO::Buffer.new(8)
    @machine.register_buffers([a])
    @machine.write(w, "x")
    assert_raises(IO::Buffer::LockedError) { @machine.read(r, a, 1) }
    assert_equal 1, @machine.read_fixed(r, 0, 1)
  end

  def test_read_only_buffer
    r, w = pipe
    ro = IO::Buffer.for("readonly data")
    assert ro.readonly?
    @machine.register_buffers([ro])
    assert_equal 8, @machine.write_fixed(w, 0, 8)
    out = +""
    @machine.read(r, out, 8)
    assert_equal "readonly", out
    @machine.write(w, "zzz")
    assert_raises(IO::Buffer::AccessError) { @machine.read_fixed(r, 0, 3) }
    assert_equal "readonly data", ro.get_string
    assert_nil @machine.unregister_buffers
  end

  def test_nonblocking_fds
    r, w = pipe
    IO.for_fd(r, autoclose: false).nonblock = true
    IO.for_fd(w, autoclose: false).nonblock = true
    src = IO::Buffer.new(4)
    dst = IO::Buffer.new(4)
    @machine.register_buffers([src, dst])
    src.set_string("ping")

    f = @machine.spin { @machine.read_fixed(r, 1) }
    @machine.snooze
    refute f.done?
    assert_equal 4, @machine.write_fixed(w, 0)
    assert_equal 4, @machine.join(f)
    assert_equal "ping", dst.get_string
    assert_no_pending_ops
  end

  def test_concurrent_fixed_reads
    r1, w1 = pipe
    r2, w2 = pipe
    a = IO::Buffer.new(8)
    b = IO::Buffer.new(8)
    @machine.register_buffers([a, b])
    f1 = @machine.spin { @machine.read_fixed(r1, 0, 4) }
    f2 = @machine.spin { @machine.read_fixed(r2, 1, 4, 4) }
    @machine.snooze
    @machine.write(w2, "2222")
    @machine.write(w1, "1111")
    assert_equal [4, 4], @machine.join(f1, f2)
    assert_equal "1111", a.get_string(0, 4)
    assert_equal "2222", b.get_string(4, 4)
  end

  def test_unregister_refused_while_pending
    r, w = pipe
    a = IO::Buffer.new(8)
    @machine.register_buffers([a])
    f = @machine.spin { @machine.read_fixed(r, 0, 5) }
    @machine.snooze

    e = assert_raises(UM::Error) { @machine.unregister_buffers }
    assert_match(/pending/, e.message)
    assert_raises(UM::Error) { @machine.register_buffers([IO::Buffer.new(8)]) }
    assert_raises(UM::Error) { @machine.register_buffers([]) }
    assert a.locked?

    @machine.write(w, "later")
    assert_equal 5, @machine.join(f)
    assert_equal "later", a.get_string(0, 5)
    assert_nil @machine.unregister_buffers
    refute a.locked?
  end

  def test_timeout_cancels_read_fixed
    r, w = pipe
    a = IO::Buffer.new(16)
    @machine.register_buffers([a])
    t0 = monotonic
    assert_raises(Timeout::Error) do
      @machine.timeout(0.02, Timeout::Error) { @machine.read_fixed(r, 0) }
    end
    assert_operator monotonic - t0, :<, 2
    assert_no_pending_ops

    # The cancelled read took nothing, and the machine works on.
    @machine.write(w, "after")
    assert_equal "\0" * 5, a.get_string(0, 5)
    assert_equal 5, @machine.read_fixed(r, 0, 5)
    assert_equal "after", a.get_string(0, 5)

    # The registration is free to go.
    assert_nil @machine.unregister_buffers
    refute a.locked?
  end

  def test_exception_scheduled_into_fixed_reader
    r, _w = pipe
    @machine.register_buffers([IO::Buffer.new(8)])
    f = @machine.spin do
      @machine.read_fixed(r, 0)
    rescue RuntimeError => e
      e.message
    end
    @machine.snooze
    @machine.schedule(f, RuntimeError.new("stop"))
    assert_equal "stop", @machine.join(f)
    assert_no_pending_ops
    assert_nil @machine.unregister_buffers
  end

  def test_non_exception_wake_returns_value
    r, _w = pipe
    @machine.register_buffers([IO::Buffer.new(8)])
    f = @machine.spin { @machine.read_fixed(r, 0) }
    @machine.snooze
    @machine.schedule(f, :woken)
    assert_equal :woken, @machine.join(f)
    assert_no_pending_ops
    assert_nil @machine.unregister_buffers
  end

  def test_terminate_fixed_reader
    r, _w = pipe
    @machine.register_buffers([IO::Buffer.new(8)])
    f = @machine.spin { @machine.read_fixed(r, 0) }
    @machine.snooze
    @machine.terminate(f)
    @machine.join(f)
    assert_no_pending_ops
    assert_nil @machine.unregister_buffers
  end

  def test_cancel_write_fixed_on_full_pipe
    r, w = pipe
    big = IO::Buffer.new(1 << 20)
    @machine.register_buffers([big])
    assert_operator @machine.write_fixed(w, 0), :<, big.size # fills the pipe
    assert_raises(Timeout::Error) do
      @machine.timeout(0.02, Timeout::Error) { @machine.write_fixed(w, 0) }
    end
    assert_no_pending_ops
    assert_nil @machine.unregister_buffers
    out = +""
    assert_operator @machine.read(r, out, 1 << 16), :>, 0
  end

  def test_gc_stress_register_and_read
    r, w = pipe
    GC.stress = true
    begin
      # Only the machine references these buffers.
      @machine.register_buffers(Array.new(3) { IO::Buffer.new(64) })
      @machine.write(w, "stress")
      assert_equal 6, @machine.read_fixed(r, 2, 6, 10)
      assert_equal 6, @machine.write_fixed(w, 2, 6, 10)
    ensure
      GC.stress = false
    end
    out = +""
    @machine.read(r, out, 6)
    assert_equal "stress", out
  end

  def test_buffers_kept_alive_by_machine
    r, w = pipe
    @machine.register_buffers(Array.new(4) { |i| IO::Buffer.new(4096 * (i + 1)) })
    3.times { GC.start(full_mark: true, immediate_sweep: true) }
    GC.compact if GC.respond_to?(:compact)
    @machine.write(w, "alive")
    assert_equal 5, @machine.read_fixed(r, 3, 5, 100)
    assert_equal 5, @machine.write_fixed(w, 3, 5, 100)
    out = +""
    @machine.read(r, out, 5)
    assert_equal "alive", out
  end

  def test_other_thread_refused
    @machine.register_buffers([IO::Buffer.new(8)])
    e = Thread.new do
      @machine.unregister_buffers
    rescue UM::Error => e
      e
    end.value
    assert_kind_of UM::Error, e
    thread = Thread.new do
      Thread.current.report_on_exception = false
      @machine.read_fixed(0, 0)
    end
    assert_raises(UM::Error) { thread.join }
  end

  def test_machines_are_independent
    r, w = pipe
    other = UM.new
    a = IO::Buffer.new(8)
    @machine.register_buffers([a])
    assert_raises(UM::Error) { other.read_fixed(r, 0) }
    assert_raises(IO::Buffer::LockedError) { other.register_buffers([a]) }
    other.register_buffers([IO::Buffer.new(8)])
    @machine.write(w, "m")
    assert_equal 1, @machine.read_fixed(r, 0, 1)
    assert_equal "m", a.get_string(0, 1)
    other.unregister_buffers
  end
end
