# frozen_string_literal: true

require_relative "scheduler_helper"

# Ruby's own IO, File and Socket classes under UM::FiberScheduler: each test
# checks the result and the hooks Ruby 3.4 calls for it.
class FiberSchedulerIOTest < SchedulerTestCase
  def setup
    super
    @dir = Dir.mktmpdir
    @path = File.join(@dir, "file")
    File.write(@path, "one\ntwo\nthree\n")
  end

  def teardown
    super
    FileUtils.rm_rf(@dir)
  end

  # Ruby sends regular-file I/O to blocking_operation_wait, pipe and socket
  # writes to io_write.
  WRITE_HOOK = { pipe: :io_write, socket: :io_write, file: :blocking_operation_wait }.freeze

  # --- IO class methods ---------------------------------------------------

  def test_binread
    assert_equal "one\ntwo\nthree\n", scheduled { IO.binread(@path) }
    assert_hooks :io_read, :blocking_operation_wait
  end

  def test_binwrite
    assert_equal 3, scheduled { IO.binwrite(@path, "abc") }
    assert_equal "abc", File.read(@path)
    assert_hooks :blocking_operation_wait
  end

  def test_write
    assert_equal 4, scheduled { IO.write(@path, "a\nb\n") }
    assert_equal "a\nb\n", File.read(@path)
    assert_hooks :blocking_operation_wait
  end

  def test_read
    assert_equal "one\ntwo\nthree\n", scheduled { IO.read(@path) }
    assert_hooks :io_read, :blocking_operation_wait
  end

  def test_readlines
    assert_equal %W[one\n two\n three\n], scheduled { IO.readlines(@path) }
    assert_hooks :io_read
  end

  def test_foreach
    lines = scheduled { [].tap { |a| IO.foreach(@path, chomp: true) { |l| a << l } } }
    assert_equal %w[one two three], lines
    assert_hooks :io_read
  end

  def test_copy_stream_file_to_pipe
    r, w = io_pipe
    data = scheduled do
      IO.copy_stream(@path, w)
      w.close
      r.read
    end
    assert_equal "one\ntwo\nthree\n", data
    assert_hooks :blocking_operation_wait, :io_read
  end

  def test_copy_stream_pipe_to_file
    r, w = io_pipe
    w.write("piped data")
    w.close
    assert_equal 10, scheduled { IO.copy_stream(r, @path) }
    assert_equal "piped data", File.read(@path)
    assert_hooks :blocking_operation_wait
  end

  # The copy runs on a worker thread and must wait there for the pipe.
  def test_copy_stream_waits_for_pipe
    r, w = io_pipe
    copied = nil
    Timeout.timeout(5) do
      with_scheduler do
        Fiber.schedule { copied = IO.copy_stream(r, @path) }
        Fiber.schedule { sleep 0.02; w.write("piped data"); w.close } # lets the copy find the pipe empty
      end
    end
    assert_equal 10, copied
    assert_equal "piped data", File.read(@path)
  end

  def test_popen_read
    out = scheduled { IO.popen(["echo", "hello"]) { |io| io.read } }
    assert_equal "hello\n", out
    assert_equal 0, $?.exitstatus
    assert_hooks :io_read, :process_wait
  end

  def test_popen_write
    out = scheduled do
      IO.popen(["tr", "a-z", "A-Z"], "r+") do |io|
        io.write("shout")
        io.close_write
        io.read
      end
    end
    assert_equal "SHOUT", out
    assert_hooks :io_write, :io_read, :process_wait
  end

  def test_select_readable
    r, w = io_pipe
    ready = scheduled do
      Fiber.schedule { w.write("x") }
      IO.select([r], nil, nil, 5)
    end
    assert_equal [[r], [], []], ready
    assert_hooks :io_select
  end

  def test_select_writable
    r, w = io_pipe
    assert_equal [[], [w], []], scheduled { IO.select([r], [w], nil, 5) }
    assert_hooks :io_select
  end

  def test_select_with_fewer_than_four_arguments
    r, w = io_pipe
    w.write("x")
    assert_equal [[r], [], []], scheduled { IO.select([r]) }
    assert_equal [[], [w], []], scheduled { IO.select(nil, [w]) }
    assert_hooks :io_select
  end

  def test_select_timeout_returns_nil
    r, = io_pipe
    assert_nil scheduled { IO.select([r], nil, nil, 0.01) }
    assert_hooks :io_select
  end

  def test_select_sees_data_buffered_by_ruby
    r, w = io_pipe
    ready = scheduled do
      w.write("a\nb\n")
      r.gets # reads both lines into Ruby's buffer: the pipe itself is empty
      IO.select([r], nil, nil, 5)
    end
    assert_equal [[r], [], []], ready
    assert_hooks :io_select
  end

  # --- IO instance methods on pipes, files and sockets ----------------------

  def test_write_methods
    {
      "<<" => ->(w) { w << "a" << 1 << "\n" },
      "print" => ->(w) { w.print("a", 1, "\n") },
      "printf" => ->(w) { w.printf("%s%d\n", "a", 1) },
      "puts" => ->(w) { w.puts("a1") },
      "write" => ->(w) { assert_equal 3, w.write("a", 1, "\n") },
      "syswrite" => ->(w) { assert_equal 3, w.syswrite("a1\n") },
      "write_nonblock" => ->(w) { assert_equal 3, w.write_nonblock("a1\n") }
    }.each do |name, write|
      each_stream do |kind, r, w|
        data = scheduled do
          write.(w)
          w.close
          r.read
        end
        assert_equal "a1\n", data, "#{name} on #{kind}"
        hook = name == "syswrite" ? :io_write : WRITE_HOOK[kind]
        assert_hook hook, "#{name} on #{kind}" unless name == "write_nonblock" # a write that fits never waits
      end
    end
  end

  def test_read_methods
    {
      "read" => [->(r) { r.read }, "ab\ncd\n"],
      "read(len)" => [->(r) { r.read(4) }, "ab\nc"],
      "readpartial" => [->(r) { r.readpartial(100) }, "ab\ncd\n"],
      "sysread" => [->(r) { r.sysread(100) }, "ab\ncd\n"],
      "read_nonblock" => [->(r) { r.read_nonblock(100) }, "ab\ncd\n"],
      "gets" => [->(r) { r.gets }, "ab\n"],
      "readline" => [->(r) { r.readline }, "ab\n"],
      "getc" => [->(r) { r.getc }, "a"],
      "readlines" => [->(r) { r.readlines }, %W[ab\n cd\n]],
      "each_line" => [->(r) { r.each_line.to_a }, %W[ab\n cd\n]],
      "each_char" => [->(r) { r.each_char.to_a.join }, "ab\ncd\n"],
      "each_byte" => [->(r) { r.each_byte.to_a }, "ab\ncd\n".bytes]
    }.each do |name, (read, expected)|
      each_stream do |kind, r, w|
        w.write("ab\ncd\n")
        w.close
        assert_equal expected, scheduled { read.(r) }, "#{name} on #{kind}"
        # BasicSocket#read_nonblock reads directly, without a hook.
        assert_hook :io_read, "#{name} on #{kind}" unless name == "read_nonblock" && kind == :socket
      end
    end
  end

  # The reader waits for data that another fiber writes later.
  def test_reads_wait_for_a_later_write
    %i[gets readpartial read].each do |method|
      each_stream(:pipe, :socket) do |kind, r, w|
        rec = with_scheduler do
          Fiber.schedule { @got = method == :read ? r.read(5) : r.public_send(method, *(method == :gets ? [] : [5])) }
          Fiber.schedule { w.write("late\n") }
        end
        assert_equal "late\n", @got, "#{method} on #{kind}"
        assert_hooks :io_read, :io_write, recorder: rec
      end
    end
  end

  # Ruby 3.4's IO#pwrite would call io_pwrite without the GVL; the library
  # makes it a plain pwrite(2) there (see PwriteWithoutScheduler).
  def test_pread_pwrite_on_file
    File.open(@path, "r+") do |f|
      assert_equal 3, scheduled { f.pwrite("TWO", 4) }
      refute_hooks :io_pwrite if RUBY_VERSION < "3.5"
      assert_equal "TWO\nth", scheduled { f.pread(6, 4) }
      assert_hooks :io_pread
    end
    assert_equal "one\nTWO\nthree\n", File.read(@path)
  end

  def test_io_buffer_pwrite_and_pread
    File.open(@path, "r+") do |f|
      assert_equal 3, scheduled { IO::Buffer.for(+"ONE").pwrite(f, 0) }
      assert_hooks :io_pwrite
      buffer = IO::Buffer.new(5)
      assert_equal 5, scheduled { buffer.pread(f, 4, 5) }
      assert_hooks :io_pread
      assert_equal "two\nt", buffer.get_string
    end
    assert_equal "ONE\ntwo\nthree\n", File.read(@path)
  end

  def test_close_after_pwrite
    f = File.open(@path, "r+")
    Timeout.timeout(2) { scheduled { f.pwrite("X", 0); f.close } }
    assert_predicate f, :closed?
    assert_equal "Xne\n", File.read(@path)[0, 4]
  end

  def test_pread_pwrite_on_pipe_and_socket_raise_espipe
    each_stream(:pipe, :socket) do |kind, r, w|
      w.write("x")
      assert_raises(Errno::ESPIPE, kind.to_s) { scheduled { r.pread(1, 0) } }
      assert_raises(Errno::ESPIPE, kind.to_s) { scheduled { w.pwrite("x", 0) } }
    end
  end

  def test_close
    each_stream do |kind, r, w|
      scheduled do
        w.close
        r.close
      end
      assert w.closed? && r.closed?, kind.to_s
      assert_raises(Errno::EBADF, kind.to_s) { IO.for_fd(@last_fds[0], autoclose: false).stat }
    end
  end

  def test_wait_readable
    each_stream(:pipe, :socket) do |kind, r, w|
      assert_nil scheduled { r.wait_readable(0.01) }, kind.to_s
      assert_hooks :io_wait
      rec = with_scheduler do
        Fiber.schedule { @ready = r.wait_readable(5) }
        Fiber.schedule { w.write("x") }
      end
      assert_equal r, @ready, kind.to_s
      assert_hooks :io_wait, recorder: rec
    end
  end

  def test_wait_writable
    each_stream(:pipe, :socket) do |kind, _r, w|
      assert_equal w, scheduled { w.wait_writable(1) }, kind.to_s
      assert_hooks :io_wait
    end
  end

  def test_large_write_through_pipe
    r, w = io_pipe
    r.binmode
    data = Random.new(1).bytes(4 << 20)
    received = nil
    rec = with_scheduler do
      Fiber.schedule { received = r.read }
      Fiber.schedule { w.write(data); w.close }
    end
    assert_equal data.bytesize, received.bytesize
    assert_equal data, received
    assert_hooks :io_write, :io_read, recorder: rec
    assert_operator rec.count(:io_read), :>, 1 # the pipe holds far less than 4 MiB
  end

  # --- Sockets -----------------------------------------------------------

  def test_unix_socket_pair
    a, b = UNIXSocket.pair
    line = scheduled do
      Fiber.schedule { a.puts("hello") }
      b.gets
    end
    assert_equal "hello\n", line
    assert_hooks :io_write, :io_read
  ensure
    a&.close
    b&.close
  end

  def test_socket_recv_waits_for_send
    a, b = UNIXSocket.pair
    got = nil
    @recorder = with_scheduler do
      Fiber.schedule { got = b.recv(100) }
      Fiber.schedule { a.send("datagram", 0) }
    end
    assert_equal "datagram", got
    assert_hooks :io_wait # recv waits for readability, then reads directly
  ensure
    a&.close
    b&.close
  end

  def test_tcp_server_and_socket
    server = TCPServer.new("127.0.0.1", 0)
    port = server.addr[1]
    reply = scheduled do
      Fiber.schedule do
        conn = server.accept
        conn.puts("echo: #{conn.gets}")
        conn.close
      end
      client = TCPSocket.new("127.0.0.1", port)
      client.puts("hi")
      client.read.tap { client.close }
    end
    assert_equal "echo: hi\n", reply
    assert_hooks :io_wait, :io_read, :io_write
  ensure
    server&.close
  end

  def test_tcp_send_and_recv
    server = TCPServer.new("127.0.0.1", 0)
    got = scheduled do
      client = Socket.tcp("127.0.0.1", server.addr[1])
      conn = server.accept
      Fiber.schedule { client.send("ping", 0) }
      conn.recv(10).tap { client.close; conn.close }
    end
    assert_equal "ping", got
    assert_hooks :io_wait
  ensure
    server&.close
  end

  # --- Files -----------------------------------------------------------------

  def test_file_write_and_read
    data = scheduled do
      File.write(@path, "new\n")
      File.open(@path, "a") { |f| f.puts("appended") }
      File.read(@path)
    end
    assert_equal "new\nappended\n", data
    assert_hooks :blocking_operation_wait, :io_read
  end

  def test_file_read_in_chunks
    File.write(@path, "0123456789" * 1000)
    chunks = scheduled do
      File.open(@path) do |f|
        [].tap { |a| while (chunk = f.read(4096)) do a << chunk end }
      end
    end
    assert_equal [4096, 4096, 1808], chunks.map(&:bytesize)
    assert_equal "0123456789" * 1000, chunks.join
    assert_hooks :io_read
  end

  # --- IO#timeout ------------------------------------------------------------

  def test_io_timeout_raises
    r, = io_pipe
    r.timeout = 0.05
    assert_raises(IO::TimeoutError) { scheduled { r.read(1) } }
    assert_hooks :io_read
  end

  def test_io_timeout_not_reached
    r, w = io_pipe
    r.timeout = 1
    rec = with_scheduler do
      Fiber.schedule { @got = r.read(3) }
      Fiber.schedule { w.write("abc") }
    end
    assert_equal "abc", @got
    assert_hooks :io_read, recorder: rec
  end

  # --- Blocking and non-blocking fds -----------------------------------------

  def test_blocking_and_nonblocking_fds
    [true, false].each do |nonblock|
      rfd, wfd = pipe
      r = IO.for_fd(rfd, autoclose: false)
      w = IO.for_fd(wfd, autoclose: false)
      r.nonblock = w.nonblock = nonblock
      w.sync = true # IO.for_fd does not make a write end sync as IO.pipe does
      first_read = Queue.new
      rec = with_scheduler do
        Fiber.schedule { @got = [r.readpartial(10).tap { first_read << true }, r.read(3)] }
        Fiber.schedule { w.write("abc"); first_read.pop; w.write("def") }
      end
      assert_equal %w[abc def], @got, "nonblock: #{nonblock}"
      assert_hooks :io_read, :io_write, recorder: rec
    end
  end

  def test_read_nonblock_on_empty_pipe
    r, = io_pipe
    assert_equal :wait_readable, Timeout.timeout(2) { scheduled { r.read_nonblock(1, exception: false) } }
    assert_raises(IO::EAGAINWaitReadable) { Timeout.timeout(2) { scheduled { r.read_nonblock(1) } } }
  end

  # --- Errors ----------------------------------------------------------------

  def test_ebadf_for_fd_closed_behind_rubys_back
    [->(fd) { IO.for_fd(fd).close }, ->(fd) { @machine.close(fd) }].each do |close_fd|
      rfd, wfd = UM.pipe
      track_fd(wfd)
      r = IO.for_fd(rfd, autoclose: false)
      close_fd.(rfd)
      assert_raises(Errno::EBADF) { scheduled { r.read(1) } }
      assert_hooks :io_read
    end
  end

  def test_epipe
    r, w = io_pipe
    r.close
    assert_raises(Errno::EPIPE) { scheduled { w.write("x") } }
    assert_hooks :io_write
  end

  def test_closed_io_raises_io_error
    r, w = io_pipe
    r.close
    w.close
    assert_raises(IOError) { scheduled { r.read } }
    assert_raises(IOError) { scheduled { w.write("x") } }
    refute_hooks :io_read, :io_write
  end

  def test_eof
    each_stream do |kind, r, w|
      w.close
      assert_raises(EOFError, kind.to_s) { scheduled { r.readpartial(1) } }
      assert_raises(EOFError, kind.to_s) { scheduled { r.readline } }
      assert_nil scheduled { r.gets }, kind.to_s
      assert_hooks :io_read
    end
  end

  # --- Concurrency -----------------------------------------------------------

  # A pty takes no RWF_NOWAIT: one attempt on it is a plain nonblocking
  # read, and a blocking pty waits on the ring.
  def test_pty_readpartial_and_read_nonblock
    require "pty"
    require "io/nonblock"
    master, slave = PTY.open
    @ios = (@ios || []).push(master, slave)
    results = []
    with_scheduler do
      Fiber.schedule do
        results << master.readpartial(100) # waits for the writer
        master.nonblock = true
        results << (master.read_nonblock(10) rescue $!.class) # rubocop:disable Style/RescueModifier
        results << master.read_nonblock(10, exception: false)
        slave.write("again\n")
        results << master.readpartial(100)
      end
      Fiber.schedule { slave.write("hello\n") }
    end
    assert_equal ["hello\r\n", IO::EAGAINWaitReadable, :wait_readable, "again\r\n"], results
  end

  # A transfer larger than the pipe holds: the write goes on in parts while
  # the reader drains the pipe.
  def test_large_write_part_direct_part_waiting
    r, w = io_pipe
    data = Random.bytes(1 << 20)
    received = nil
    with_scheduler do
      Fiber.schedule { w.write(data); w.close }
      Fiber.schedule { received = r.read }
    end
    assert_equal data.bytesize, received.bytesize
    assert data == received.b, "the bytes read differ from the bytes written"
  end

  def test_fibers_do_not_block_each_other
    r1, w1 = io_pipe
    r2, w2 = io_pipe
    order = []
    with_scheduler do
      Fiber.schedule { order << [:r1, r1.gets] }
      Fiber.schedule { order << [:r2, r2.gets] }
      # Both readers wait; this fiber runs on, and finishes, first.
      Fiber.schedule do
        order << :writer
        w2.puts("second pipe")
        w1.puts("first pipe")
      end
    end
    # The order the two readers wake in is the kernel's.
    assert_equal :writer, order.first
    assert_equal [[:r1, "first pipe\n"], [:r2, "second pipe\n"]], order.drop(1).sort
  end

  # Past 256 ops in use, one-attempt transfers are syscalls: they must not
  # write into a read-only buffer (IO::Buffer.for(frozen String)) either.
  def test_read_only_buffer_with_many_ops_in_use
    r, w = io_pipe
    w.write("XYZ")
    frozen = "abc".freeze
    results = in_scheduler_thread do |scheduler|
      results = []
      Fiber.schedule do
        machine = scheduler.machine
        pipes = Array.new(300) { UM.pipe }
        waiters = pipes.map { |fd, _| machine.spin { machine.read(fd, +"", 1) } }
        machine.snooze
        results << (machine.metrics[:ops_pending] >= 256)
        buffer = IO::Buffer.for(frozen)
        [-> { scheduler.io_read(r, buffer, 0, 0) }, -> { scheduler.io_read(r, buffer, 1, 0) },
         -> { buffer.read(r, 0) }, -> { scheduler.io_pread(r, buffer, 0, 0, 0) }].each do |call|
          call.call
          results << :no_error
        rescue IO::Buffer::AccessError => e
          results << e.message
        end
        # Writing from a read-only buffer is fine, on either path.
        results << scheduler.io_write(w, buffer, 0, 0)
        results << scheduler.io_write(w, buffer, 3, 0)
        pipes.each { |_, wfd| machine.write(wfd, "x") }
        machine.join(*waiters)
        pipes.flatten.each { |fd| machine.close(fd) }
      end
      results
    end
    assert_equal [true] + ["Buffer is not writable!"] * 4 + [3, 3], results
    assert_equal "abc", frozen
    assert_equal "XYZabcabc", r.read_nonblock(100) # nothing was read
  end

  # IO#close in one fiber wakes the fibers waiting on that IO in others with
  # IOError, as it does for threads; the fd is closed after they left.
  def test_close_wakes_fibers_waiting_on_the_io
    r, w = io_pipe
    w2r, w2 = io_pipe
    nil until w2.write_nonblock("x" * 4096, exception: false) == :wait_writable
    log = in_scheduler_thread do
      log = []
      [-> { r.read(1) }, -> { r.wait_readable }, -> { r.readpartial(10) }].each_with_index do |wait, i|
        Fiber.schedule do
          wait.call
          log << [i, :returned]
        rescue IOError => e
          log << [i, e.message]
        end
      end
      Fiber.schedule do
        w2.write("y")
        log << [:writer, :returned]
      rescue IOError => e
        log << [:writer, e.message]
      end
      Fiber.schedule do
        sleep 0.01 # the waits are in the kernel
        r.close
        w2.close
        log << :closed
      end
      log
    end
    message = "stream closed in another thread"
    assert_equal [[0, message], [1, message], [2, message], [:writer, message], :closed].sort_by(&:to_s),
      log.sort_by(&:to_s)
    assert_equal :closed, log.last # the closer waits for them to leave
    assert r.closed? && w2.closed?
    refute w.closed?
    assert_equal "x", w2r.read_nonblock(1) # the writer's bytes stayed in the pipe
  end

  # The thread's main fiber closing the IO: the waiters still wake.
  def test_close_from_main_fiber_wakes_waiters
    r, = io_pipe
    log = in_scheduler_thread do
      log = []
      Fiber.schedule do
        r.gets
      rescue IOError => e
        log << e.message
      end
      Fiber.scheduler.machine.sleep(0.01) # the read is in the kernel
      r.close
      log << :closed
      log
    end
    assert_equal ["stream closed in another thread", :closed], log
  end

  # Through a wrapper (the recorder): the close finds the waiters' machine
  # by their scheduler, not by Fiber.scheduler.
  def test_close_wakes_waiters_under_a_wrapped_scheduler
    r, = io_pipe
    log = in_scheduler_thread do
      recorder = SchedulerRecorder.new(UM::FiberScheduler.new)
      Fiber.set_scheduler(recorder)
      log = []
      Fiber.schedule do
        r.read(1)
      rescue IOError => e
        log << e.message
      end
      recorder.scheduler.machine.sleep(0.01) # the read is in the kernel
      r.close
      log << recorder.count(:io_read)
      log
    end
    assert_equal ["stream closed in another thread", 1], log
  end

  # Reads that wait in the kernel rather than in #io_wait: a blocking fd,
  # and IO::Buffer#read with a minimum length.
  def test_close_wakes_reads_waiting_in_the_kernel
    r1, = io_pipe
    r1.nonblock = false
    r2, = io_pipe
    log = in_scheduler_thread do
      log = []
      [-> { r1.readpartial(5) }, -> { IO::Buffer.new(8).read(r2, 1) }].each_with_index do |read, i|
        Fiber.schedule do
          read.call
        rescue IOError => e
          log << [i, e.message]
        end
      end
      Fiber.schedule do
        sleep 0.01
        r1.close
        r2.close
        log << :closed
      end
      log
    end
    message = "stream closed in another thread"
    assert_equal [[0, message], [1, message], :closed], log
  end

  # A forked child closing the IO: the parent's fiber waiting on it is not
  # the child's to wake (and does not run there: the close must not wait
  # for it).
  def test_close_in_forked_child_ignores_the_parents_waiters
    r, w = io_pipe
    pid = nil
    log = in_scheduler_thread do
      log = []
      Fiber.schedule { log << r.read(1) }
      Fiber.schedule do
        sleep 0.01 # the parent's read is in the kernel
        pid = fork do
          r.close
          exit!(0)
        end
        _, status = Process.wait2(pid)
        log << status.success?
        w.write("x")
      end
      log
    end
    assert_equal [true, "x"], log
  ensure
    Process.kill(:KILL, pid) rescue nil if pid # rubocop:disable Style/RescueModifier
  end

  # The closer is another thread, without a scheduler.
  def test_close_from_another_thread_wakes_fiber
    r, = io_pipe
    waiting = Thread::Queue.new
    closer = Thread.new do
      waiting.pop
      sleep 0.01 # the read is in the kernel
      r.close
      :closed
    end
    log = in_scheduler_thread do
      log = []
      Fiber.schedule do
        waiting << true
        r.readpartial(10)
      rescue IOError => e
        log << e.message
      end
      log
    end
    assert_equal ["stream closed in another thread"], log
    assert_equal :closed, closer.value
  end

  private

  def assert_hook(hook, message)
    assert_includes @recorder.hooks, hook, message
  end

  # Yields (kind, reader, writer) for a pipe, a file (writer and reader on
  # the same path) and a Unix socket pair; closes them afterwards. The fds
  # of the last pair are in @last_fds.
  def each_stream(*kinds)
    kinds = %i[pipe file socket] if kinds.empty?
    kinds.each do |kind|
      r, w = open_stream(kind)
      @last_fds = [r.fileno, w.fileno]
      begin
        yield kind, r, w
      ensure
        [r, w].each { |io| io.close unless io.closed? }
      end
    end
  end

  def open_stream(kind)
    case kind
    when :pipe then IO.pipe
    when :socket then UNIXSocket.pair
    when :file
      w = File.open(File.join(@dir, "stream"), "w")
      w.sync = true
      [File.open(w.path), w]
    end
  end
end
