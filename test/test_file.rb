# frozen_string_literal: true

require_relative "helper"

class FileOpsTest < UMTestCase
  def setup
    super
    @dir = Dir.mktmpdir("um-test")
  end

  def teardown
    FileUtils.rm_rf(@dir)
    super
  end

  def path(name) = File.join(@dir, name)

  def test_open_write_read_close
    fd = @machine.open(path("a"), UM::O_CREAT | UM::O_WRONLY)
    assert_kind_of Integer, fd
    assert_equal 5, @machine.write(fd, "hello")
    assert_equal fd, @machine.close(fd)
    assert_equal "hello", File.read(path("a"))
  end

  def test_open_mode
    fd = @machine.open(path("m"), UM::O_CREAT | UM::O_WRONLY, 0o600)
    @machine.close(fd)
    assert_equal 0o600, File.stat(path("m")).mode & 0o777
  end

  def test_open_block_form_closes
    File.write(path("b"), "data")
    fd_seen = nil
    ret = @machine.open(path("b"), UM::O_RDONLY) do |fd|
      fd_seen = fd
      buf = +""
      @machine.read(fd, buf, 10)
      buf
    end
    assert_equal "data", ret
    assert_raises(Errno::EBADF) { @machine.read(fd_seen, +"", 1) }
  end

  def test_open_errors
    e = assert_raises(Errno::ENOENT) { @machine.open(path("missing"), UM::O_RDONLY) }
    assert_match(/open/, e.message)
    assert_raises(TypeError) { @machine.open(42, UM::O_RDONLY) }
    assert_raises(TypeError) { @machine.open(path("x"), "r") }
    assert_raises(ArgumentError) { @machine.open("a\0b", UM::O_RDONLY) }
    assert_raises(ArgumentError) { @machine.open(path("x")) }
  end

  def test_open_pathname
    require "pathname"
    File.write(path("p"), "x")
    fd = @machine.open(Pathname.new(path("p")), UM::O_RDONLY)
    @machine.close(fd)
  end

  def test_read_string_buffer
    r, w = pipe
    @machine.write(w, "abcdef")
    buf = +"xyz"
    assert_equal 6, @machine.read(r, buf, 10)
    assert_equal "abcdef", buf
  end

  def test_read_buffer_offsets
    r, w = pipe
    buf = +"012345"
    @machine.write(w, "ab")
    assert_equal 2, @machine.read(r, buf, 2, -1)
    assert_equal "012345ab", buf
    @machine.write(w, "cd")
    assert_equal 2, @machine.read(r, buf, 2, 3)
    assert_equal "012cd", buf
    @machine.write(w, "ef")
    assert_equal 2, @machine.read(r, buf, 2, -2)
    assert_equal "012cef", buf
    assert_raises(ArgumentError) { @machine.read(r, buf, 2, 100) }
    assert_raises(ArgumentError) { @machine.read(r, buf, 2, -100) }
  end

  def test_read_grows_string
    r, w = pipe
    data = "x" * 50_000
    @machine.write(w, data)
    buf = +""
    n = 0
    n += @machine.read(r, buf, 65_536, -1) while n < data.bytesize
    assert_equal data, buf
  end

  def test_read_io_buffer
    r, w = pipe
    @machine.write(w, "buffered")
    buf = IO::Buffer.new(16)
    assert_equal 8, @machine.read(r, buf)
    assert_equal "buffered", buf.get_string(0, 8)
    @machine.write(w, "zz")
    assert_equal 2, @machine.read(r, buf, 2, 8)
    assert_equal "bufferedzz", buf.get_string(0, 10)
    @machine.write(w, "grown")
    assert_equal 5, @machine.read(r, buf, 32) # 1.0: grows as a String does
    assert_equal 32, buf.size
    assert_equal "grown", buf.get_string(0, 5)
    e = assert_raises(ArgumentError) { @machine.read(r, buf, 1, 33) }
    assert_match(/offset 33 is out of range/, e.message)
  end

  def test_read_eof
    r, w = pipe
    @machine.close(w)
    buf = +"keep"
    assert_equal 0, @machine.read(r, buf, 10, -1)
    assert_equal "keep", buf
  end

  def test_read_file_offset
    File.write(path("f"), "0123456789")
    @machine.open(path("f"), UM::O_RDONLY) do |fd|
      buf = +""
      assert_equal 3, @machine.read(fd, buf, 3, 0, 5)
      assert_equal "567", buf
    end
  end

  def test_read_errors
    r, w = pipe
    assert_raises(Errno::EBADF) { @machine.read(w, +"", 10) }
    @machine.close(w)
    @machine.close(r)
    e = assert_raises(Errno::EBADF) { @machine.read(r, +"", 10) }
    assert_match(/read/, e.message)
    assert_raises(TypeError) { @machine.read(r, :sym, 10) }
    assert_raises(TypeError) { @machine.read(r, nil, 10) }
    assert_raises(TypeError) { @machine.read("0", +"", 10) }
    assert_raises(TypeError) { @machine.read(r, +"", "10") }
    assert_raises(ArgumentError) { @machine.read(r, +"", -1) }
    assert_raises(ArgumentError) { @machine.read(r, +"", 1, 0, -5) }
    assert_raises(FrozenError) { @machine.read(r, "frozen".freeze, 10) }
    assert_raises(ArgumentError) { @machine.read(r) }
  end

  def test_read_locked_buffer_is_refused
    r, w = pipe
    buf = +""
    f = @machine.spin { @machine.read(r, buf, 10) }
    @machine.snooze
    assert_raises(RuntimeError) { @machine.read(r, buf, 10) }
    assert_raises(RuntimeError) { buf << "x" }
    @machine.write(w, "ok")
    assert_equal 2, @machine.join(f)
    buf << "!"
    assert_equal "ok!", buf
  end

  def test_read_io_buffer_in_use_is_refused
    r, w = pipe
    buf = IO::Buffer.new(8)
    f = @machine.spin { @machine.read(r, buf, 4) }
    @machine.snooze
    assert_raises(IO::Buffer::LockedError) { @machine.read(r, buf, 4, 4) }
    @machine.write(w, "ok")
    assert_equal 2, @machine.join(f)
    refute buf.locked?
  end

  # A buffer its owner locked (as Ruby does for the fiber scheduler's hooks)
  # is read into, and stays locked.
  def test_read_into_io_buffer_locked_by_its_owner
    r, w = pipe
    buf = IO::Buffer.new(8)
    @machine.write(w, "data")
    buf.locked do
      assert_equal 4, @machine.read(r, buf, 4)
      assert buf.locked?
    end
    assert_equal "data", buf.get_string(0, 4)
  end

  def test_write_partial_len_and_offsets
    File.write(path("w"), "")
    @machine.open(path("w"), UM::O_WRONLY) do |fd|
      assert_equal 3, @machine.write(fd, "abcdef", 3)
      assert_equal 2, @machine.write(fd, "XY", nil, 1)
    end
    assert_equal "aXY", File.read(path("w"))
  end

  # 1.0: len -1 is the whole buffer, so a file offset can follow positionally.
  def test_write_len_minus_one_is_whole_buffer
    r, w = pipe
    assert_equal 6, @machine.write(w, "whole!", -1)
    assert_equal "whole!", read_once(r, 10)
    assert_equal 4, @machine.write(w, IO::Buffer.for("iobf"), -1)
    assert_equal "iobf", read_once(r, 10)
    @machine.write_async(w, "async", -1)
    assert_equal "async", read_once(r, 10)
    File.write(path("o"), "0123456789")
    @machine.open(path("o"), UM::O_WRONLY) do |fd|
      assert_equal 2, @machine.write(fd, "AB", -1, 4)
      @machine.write_async(fd, "CD", -1, 8)
      @machine.fsync(fd)
    end
    assert_equal "0123AB67CD", File.read(path("o"))
  end

  def test_write_io_buffer
    r, w = pipe
    assert_equal 4, @machine.write(w, IO::Buffer.for("iobf"))
    assert_equal "iobf", read_once(r, 10)
  end

  def test_write_errors
    r, w = pipe
    assert_raises(Errno::EBADF) { @machine.write(r, "x") }
    assert_raises(ArgumentError) { @machine.write(w, "abc", 4) }
    e = assert_raises(ArgumentError) { @machine.write(w, "abc", -2) }
    assert_match(/negative length: -2/, e.message)
    assert_raises(ArgumentError) { @machine.write_async(w, "abc", -2) }
    assert_raises(ArgumentError) { @machine.write_async(w, "abc", 4) }
    assert_raises(TypeError) { @machine.write_async(w, "abc", "1") }
    assert_raises(TypeError) { @machine.write_async(w, :abc) }
    assert_raises(TypeError) { @machine.write(w, 123) }
    @machine.close(r)
    e = assert_raises(Errno::EPIPE) { @machine.write(w, "x") }
    assert_match(/write/, e.message)
  end

  def test_write_unaffected_by_later_change
    r, w = pipe
    buf = +"original"
    f = @machine.spin { @machine.write(w, buf) }
    @machine.snooze
    buf.replace("changed!")
    @machine.join(f)
    assert_equal "original", read_once(r, 20)
  end

  def test_nonblocking_fds
    r, w = pipe
    [r, w].each { |fd| IO.for_fd(fd, autoclose: false).nonblock = true }
    f = spin_reader(r, 10)
    @machine.snooze
    @machine.write(w, "nb")
    assert_equal "nb", @machine.join(f)
  end

  def test_writev
    r, w = pipe
    assert_equal 9, @machine.writev(w, "abc", +"def", IO::Buffer.for("ghi"))
    assert_equal "abcdefghi", read_once(r, 20)
    assert_equal 0, @machine.writev(w)
  end

  def test_writev_large_partial
    r, w = pipe
    parts = 4.times.map { |i| (i.to_s * 100_000) }
    reader = @machine.spin do
      buf = +""
      @machine.read(r, buf, 65_536, -1) while buf.bytesize < 400_000
      buf
    end
    assert_equal 400_000, @machine.writev(w, *parts)
    assert_equal parts.join, @machine.join(reader)
  end

  def test_writev_file_offset
    File.write(path("v"), "..........")
    @machine.open(path("v"), UM::O_WRONLY) do |fd|
      assert_equal 4, @machine.writev(fd, "ab", "cd", 3)
    end
    assert_equal "...abcd...", File.read(path("v"))
  end

  def test_writev_errors
    r, _w = pipe
    assert_raises(Errno::EBADF) { @machine.writev(r, "x") }
    assert_raises(TypeError) { @machine.writev(r, :x) }
    assert_raises(TypeError) { @machine.writev(nil, "x") }
  end

  def test_write_async
    r, w = pipe
    buf = +"async"
    assert_same buf, @machine.write_async(w, buf)
    buf.replace("XXXXX") # the kernel writes what was given
    assert_equal "async", read_once(r, 10)
    @machine.snooze
    assert_equal 0, @machine.metrics[:ops_transient]
  end

  def test_write_async_many_with_gc
    r, w = pipe
    100.times { |i| @machine.write_async(w, "#{i}," * 10) }
    GC.start
    out = +""
    expected = 100.times.map { |i| "#{i}," * 10 }.join
    @machine.read(r, out, 65_536, -1) while out.bytesize < expected.bytesize
    assert_equal expected, out
    @machine.sleep(0.001)
    m = @machine.metrics
    assert_equal 0, m[:ops_transient]
    assert_equal 0, m[:ops_pending]
  end

  def test_write_async_error_is_counted
    r, _w = pipe
    @machine.write_async(r, "x") # EBADF: a read end
    @machine.sleep(0.01)
    assert_equal 1, @machine.metrics[:async_errors]
    assert_equal 0, @machine.metrics[:ops_transient]
  end

  def test_close_async
    r, w = pipe
    assert_equal w, @machine.close_async(w)
    buf = +""
    assert_equal 0, @machine.read(r, buf, 10) # EOF: the writer is closed
    @machine.close_async(9999)
    @machine.sleep(0.01)
    assert_equal 1, @machine.metrics[:async_errors]
  end

  def test_close_errors
    assert_raises(Errno::EBADF) { @machine.close(9999) }
    assert_raises(TypeError) { @machine.close(nil) }
  end

  def test_fsync
    @machine.open(path("s"), UM::O_CREAT | UM::O_WRONLY) do |fd|
      @machine.write(fd, "sync")
      assert_equal 0, @machine.fsync(fd)
    end
    assert_raises(Errno::EBADF) { @machine.fsync(9999) }
  end

  def test_statx
    File.write(path("st"), "12345")
    st = @machine.statx(UM::AT_FDCWD, path("st"), 0, UM::STATX_ALL)
    ref = File.stat(path("st"))
    assert_equal 5, st[:size]
    assert_equal ref.ino, st[:ino]
    assert_equal ref.mode, st[:mode]
    assert_equal ref.uid, st[:uid]
    assert_equal ref.nlink, st[:nlink]
    assert_equal ref.dev, st[:dev]
    assert_in_delta ref.mtime.to_f, st[:mtime], 0.001
    assert_kind_of Float, st[:atime]
    assert_kind_of Float, st[:btime]
  end

  def test_statx_fd
    r, _w = pipe
    st = @machine.statx(r, nil, UM::AT_EMPTY_PATH, UM::STATX_ALL)
    assert_equal UM::S_IFIFO, st[:mode] & UM::S_IFMT
  end

  def test_statx_errors
    assert_raises(Errno::ENOENT) { @machine.statx(UM::AT_FDCWD, path("nope"), 0, UM::STATX_ALL) }
    assert_raises(TypeError) { @machine.statx(UM::AT_FDCWD, path("nope"), nil, UM::STATX_ALL) }
    assert_raises(TypeError) { @machine.statx(UM::AT_FDCWD, 1, 0, UM::STATX_ALL) }
  end

  def test_splice_and_tee
    r1, w1 = pipe
    r2, w2 = pipe
    r3, w3 = pipe
    @machine.write(w1, "spliced")
    assert_equal 7, @machine.tee(r1, w3, 100)
    assert_equal 7, @machine.splice(r1, w2, 100)
    a = +""
    b = +""
    @machine.read(r2, a, 10)
    @machine.read(r3, b, 10)
    assert_equal "spliced", a
    assert_equal "spliced", b
    assert_raises(Errno::EBADF) { @machine.splice(9999, w2, 1) }
    assert_raises(ArgumentError) { @machine.tee(r1, w2, -1) }
  end

  def test_poll
    r, w = pipe
    assert_equal UM::POLLOUT, @machine.poll(w, UM::POLLOUT)
    f = @machine.spin { @machine.poll(r, UM::POLLIN) }
    @machine.snooze
    refute f.done?
    @machine.write(w, "x")
    assert_equal UM::POLLIN, @machine.join(f)
  end

  def test_pipe_and_socketpair
    r, w = pipe
    assert_kind_of Integer, r
    assert_kind_of Integer, w
    a, b = socketpair
    @machine.write(a, "ping")
    assert_equal "ping", read_once(b, 10)
    assert_raises(Errno::EAFNOSUPPORT) { UM.socketpair(12345, UM::SOCK_STREAM, 0) }
    assert_raises(TypeError) { UM.socketpair(nil, UM::SOCK_STREAM, 0) }
  end

  def test_constants
    assert_equal 0, UM::O_RDONLY
    assert_equal 1, UM::STDOUT_FILENO
    assert_equal Errno::EBADF::Errno, UM::EBADF
    assert_equal Socket::AF_INET, UM::AF_INET if defined?(Socket)
    assert_equal 1, UM::POLLIN
    assert_equal(-100, UM::AT_FDCWD)
  end
end
