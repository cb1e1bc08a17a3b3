# frozen_string_literal: true

require_relative "helper"

# Transfers done as syscalls instead of ring ops (ext/um/um_direct.c): direct
# attempts on a busy machine, inline writes to regular files.
class DirectIOTest < UMTestCase
  BUSY = 300 # fibers waiting on the machine: more ops in use than UM_DIRECT_OPS

  def setup
    super
    @dir = Dir.mktmpdir("um-direct")
  end

  def teardown
    FileUtils.rm_rf(@dir)
    super
  end

  def path(name) = File.join(@dir, name)

  # Fibers each waiting on a read of a pipe nobody writes to, until released.
  def make_busy
    r, w = pipe
    fibers = Array.new(BUSY) { @machine.spin { @machine.read(r, +"", 1) } }
    @machine.snooze
    [w, fibers]
  end

  def release(w, fibers)
    @machine.write(w, "x" * BUSY)
    @machine.join(*fibers)
  end

  def test_busy_machine_reads_and_writes_ready_fds_directly
    w, fibers = make_busy
    r2, w2 = pipe
    ops = @machine.metrics[:total_ops]
    assert_equal 5, @machine.write(w2, "hello")
    buf = +""
    assert_equal 5, @machine.read(r2, buf, 10)
    assert_equal "hello", buf
    assert_equal ops, @machine.metrics[:total_ops], "a ready fd took a ring op"

    # Not ready: the attempt gives EAGAIN and the ring op waits.
    reader = @machine.spin { b = +""; @machine.read(r2, b, 10); b }
    @machine.snooze
    @machine.write(w2, "later")
    assert_equal "later", @machine.join(reader)
  ensure
    release(w, fibers)
  end

  def test_busy_machine_sockets_directly
    w, fibers = make_busy
    a, b = socketpair
    ops = @machine.metrics[:total_ops]
    assert_equal 3, @machine.send(a, "abc", 3, 0)
    buf = +""
    assert_equal 3, @machine.recv(b, buf, 10, 0)
    assert_equal "abc", buf
    assert_equal ops, @machine.metrics[:total_ops]
  ensure
    release(w, fibers)
  end

  def test_busy_machine_direct_errors_raise_like_ring_ones
    w, fibers = make_busy
    r2, w2 = pipe
    @machine.close(r2)
    @fds.delete(r2)
    assert_raises(Errno::EPIPE) { @machine.write(w2, "x") }
    assert_raises(Errno::EBADF) { @machine.read(9999, +"", 1) }
  ensure
    release(w, fibers)
  end

  # Successful direct attempts do not switch fibers: after a run of them the
  # next transfer goes through the ring, so the other fibers get their turn.
  def test_direct_attempts_leave_room_for_other_fibers
    w, fibers = make_busy
    r2, w2 = pipe
    log = []
    other = @machine.spin { log << :other }
    writer = @machine.spin { 200.times { @machine.write(w2, "x"); log << :write } }
    @machine.join(other, writer)
    assert_operator log.index(:other), :<, 199, "the other fiber ran only after 200 direct writes"
    assert_equal "x" * 200, read_once(r2, 1000)
  ensure
    release(w, fibers)
  end

  # A direct read of a regular file stops at the first page not in the page
  # cache; the read as a whole still gives everything up to maxlen.
  def test_busy_machine_file_read_is_whole
    data = Random.new(1).bytes(1 << 20)
    File.binwrite(path("f"), data)
    File.open(path("f")) { |f| f.advise(:dontneed, 512 * 1024, 0) }
    w, fibers = make_busy
    fd = @machine.open(path("f"), UM::O_RDONLY)
    buf = +""
    assert_equal data.bytesize, @machine.read(fd, buf, data.bytesize)
    assert buf.b == data, "the bytes read differ from the file's"
    @machine.close(fd)
  ensure
    release(w, fibers)
  end

  def test_file_writes_are_inline
    fd = @machine.open(path("w"), UM::O_WRONLY | UM::O_CREAT)
    ops = @machine.metrics[:total_ops]
    10.times { |i| assert_equal 6, @machine.write(fd, "line#{i}\n") }
    assert_equal ops, @machine.metrics[:total_ops], "a small file write took a ring op"
    assert_equal 4, @machine.write(fd, "at 0", 4, 0)
    big = "y" * 100_000 # above the inline limit: through the ring
    assert_equal big.bytesize, @machine.write(fd, big)
    assert_equal ops + 1, @machine.metrics[:total_ops]
    @machine.close(fd)
    lines = (0..9).map { "line#{it}\n" }.join
    assert File.read(path("w")) == "at 0" + lines[4..] + big, "the file holds other bytes than written"
  end

  def test_inline_write_errors
    fd = @machine.open(path("ro"), UM::O_RDONLY | UM::O_CREAT)
    assert_raises(Errno::EBADF) { @machine.write(fd, "x") }
    @machine.close(fd)
  end

  # An fd the machine opened but something else closed keeps its kind until
  # the number is reused; a pipe that gets the number must not be written
  # with a blocking write (the writer would stall the whole thread). Run in
  # a child: a stalled thread could not even time itself out.
  def test_stale_file_fd_reused_by_a_full_pipe
    file = path("s")
    pid = fork do
      machine = UM.new
      fd = machine.open(file, UM::O_WRONLY | UM::O_CREAT)
      r, w = UM.pipe
      io = IO.for_fd(fd, "w", autoclose: false)
      io.reopen(IO.for_fd(w, "w", autoclose: false)) # dup2: fd is now the pipe's write end
      nil while io.write_nonblock("z" * 65_536, exception: false) != :wait_writable
      io.nonblock = false
      writer = machine.spin { machine.write(fd, "tail") }
      drainer = machine.spin do
        buf = +""
        machine.read(r, buf, 65_536, -1) until buf.end_with?("tail")
      end
      machine.join(writer, drainer)
      exit!(0)
    end
    deadline = monotonic + 10
    sleep 0.01 until Process.wait(pid, Process::WNOHANG) || monotonic > deadline
    unless $?&.pid == pid
      Process.kill(:KILL, pid)
      Process.wait(pid)
      flunk "the write to a stale fd stalled the thread"
    end
    assert $?.success?, "child failed: #{$?.inspect}"
  end

  def test_fiber_scheduler_file_writes_are_inline
    ops = nil
    path = path("fs")
    Fiber.set_scheduler(UM::FiberScheduler.new(@machine))
    Fiber.schedule do
      File.open(path, "w") do |f|
        f.sync = true
        f.write("a")
        ops = @machine.metrics[:total_ops]
        100.times { f.write("b") }
        ops = @machine.metrics[:total_ops] - ops
      end
    end
    Fiber.set_scheduler(nil)
    assert_equal 0, ops
    assert_equal "a" + "b" * 100, File.read(path)
  end
end
