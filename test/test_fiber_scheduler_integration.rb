# frozen_string_literal: true

require_relative "scheduler_helper"
require "net/http"

# Larger workloads under UM::FiberScheduler: many fibers sharing Ruby's
# queues, mutexes, pipes and sockets, with Net::HTTP on top.
class FiberSchedulerIntegrationTest < SchedulerTestCase
  # A limit for each test's whole run (see #within_timeout).
  TEST_TIMEOUT = ENV["UM_GC_STRESS"] == "1" ? 600 : 10

  # Queue and SizedQueue; consumers stopped by sentinels or by #close.
  def test_queues_many_producers_and_consumers
    [[Thread::Queue, :sentinel], [Thread::Queue, :close], [Thread::SizedQueue, :sentinel]].each do |klass, finish|
      queue = klass == Thread::SizedQueue ? klass.new(10) : klass.new
      recorder, consumed = within_timeout do
        produce_and_consume(queue, producers: 4, items: 500, consumers: 3, finish: finish)
      end
      assert_all_consumed_once(consumed, 4, 500)
      assert_hooks(:fiber, :block, :unblock, recorder: recorder)
    end
  end

  def test_sized_queue_blocks_producers
    queue = Thread::SizedQueue.new(10)
    blocked_producers = 0
    recorder, consumed = within_timeout do
      produce_and_consume(queue, producers: 4, items: 500, consumers: 3, finish: :close) do
        # Called by producers before each push: a full queue makes them wait.
        blocked_producers += 1 if queue.size >= queue.max
      end
    end
    assert_all_consumed_once(consumed, 4, 500)
    assert_operator blocked_producers, :>, 0, "producers never found the queue full"
    assert_hooks(:fiber, :block, :unblock, recorder: recorder)
  end

  def test_net_http_keep_alive_clients
    # Ruby 3.4's TCPSocket.new resolves names on threads of its own when
    # fast_fallback (Happy Eyeballs) is on; without it DNS goes through the
    # scheduler's address_resolve.
    fast_fallback = Socket.tcp_fast_fallback if Socket.respond_to?(:tcp_fast_fallback)
    Socket.tcp_fast_fallback = false unless fast_fallback.nil?
    results = {}
    server = nil
    recorder = within_timeout do
      with_scheduler do
        server = TinyHTTPServer.new
        server.start
        finished = Thread::Queue.new
        4.times do |i|
          Fiber.schedule do
            results[i] = http_session(i.zero? ? "localhost" : "127.0.0.1", server.port, i)
          ensure
            finished << i
          end
        end
        Fiber.schedule do
          4.times { finished.pop }
          server.stop
        end
      end
    end

    4.times do |i|
      assert_equal [
        ["200", "GET /hello/#{i}/0"],
        ["200", "GET /hello/#{i}/1"],
        ["201", "POST /echo #{"payload #{i} " * 100}"],
        ["404", "not found: /missing"],
        ["200", "GET /hello/#{i}/2"]
      ], results[i]
    end
    # One connection per client, each used for all its requests.
    assert_equal [5] * 4, server.requests_per_connection.sort
    assert_hooks(:fiber, :io_read, :io_write, :address_resolve, :timeout_after, recorder: recorder)
    assert_includes recorder.args(:address_resolve), ["localhost"]
  ensure
    Socket.tcp_fast_fallback = fast_fallback unless fast_fallback.nil?
  end

  # With hundreds of fibers waiting, one-attempt reads and writes become
  # syscalls that do not suspend (see um_fiber_scheduler_class.c): the data
  # still arrives whole and in order, and far fewer ring ops than transfers
  # are made.
  def test_many_waiting_fibers_take_the_syscall_path
    pairs = 300
    messages = 20
    received = Array.new(pairs)
    machine = UM.new
    ops_before = machine.metrics[:total_ops]
    within_timeout do
      with_scheduler(UM::FiberScheduler.new(machine)) do
        pairs.times do |i|
          r, w = IO.pipe
          Fiber.schedule { received[i] = r.read; r.close }
          Fiber.schedule do
            messages.times { |n| w.write(format("%04d:%02d;", i, n)) }
            w.close
          end
        end
      end
    end
    pairs.times do |i|
      assert_equal Array.new(messages) { |n| format("%04d:%02d;", i, n) }.join, received[i], "pipe #{i}"
    end
    transfers = pairs * messages * 2
    assert_operator machine.metrics[:total_ops] - ops_before, :<, transfers / 2
  end

  def test_many_pipes
    pairs = 200
    messages = 50
    message = "x" * 100
    totals = Array.new(pairs)
    recorder = within_timeout do
      with_scheduler do
        pairs.times do |i|
          r, w = IO.pipe
          Fiber.schedule do
            total = 0
            begin
              loop { total += r.readpartial(4096).bytesize }
            rescue EOFError
              totals[i] = total
            end
          ensure
            r.close
          end
          Fiber.schedule do
            messages.times do |n|
              w.write(message)
              sleep 0 if n % 10 == 9 # let the readers in
            end
          ensure
            w.close
          end
        end
      end
    end
    assert_equal [messages * message.bytesize] * pairs, totals
    assert_hooks(:fiber, :io_read, :io_write, recorder: recorder)
  end

  def test_echo_server_many_clients
    clients = 100
    lines = 20
    replies = Array.new(clients)
    recorder = within_timeout do
      with_scheduler do
        server = TCPServer.new("127.0.0.1", 0)
        port = server.addr[1]
        Fiber.schedule do
          # The number of clients is known: the server stops after them.
          clients.times do
            conn = server.accept
            Fiber.schedule do
              while (line = conn.gets)
                conn.write(line)
              end
            ensure
              conn.close
            end
          end
        ensure
          server.close
        end
        clients.times do |c|
          Fiber.schedule do
            sock = TCPSocket.new("127.0.0.1", port)
            replies[c] = lines.times.map do |n|
              sock.write("client #{c} line #{n}\n")
              sock.gets
            end
          ensure
            sock&.close
          end
        end
      end
    end
    clients.times do |c|
      assert_equal lines.times.map { |n| "client #{c} line #{n}\n" }, replies[c], "client #{c}"
    end
    assert_hooks(:fiber, :io_read, :io_write, recorder: recorder)
  end

  def test_mutex_contention_with_sleep
    counter = 0
    mutex = Mutex.new
    recorder = within_timeout do
      with_scheduler do
        10.times do
          Fiber.schedule do
            20.times do
              mutex.synchronize do
                value = counter
                sleep 0 # other fibers run here, and must not get in
                counter = value + 1
              end
            end
          end
        end
      end
    end
    assert_equal 200, counter
    assert_hooks(:block, :unblock, :kernel_sleep, recorder: recorder)
  end

  def test_mutex_contention_with_io
    counter = 0
    mutex = Mutex.new
    to_echo, echo_in = io_pipe
    from_echo, echo_out = io_pipe
    recorder = within_timeout do
      with_scheduler do
        workers = 10
        workers.times do
          Fiber.schedule do
            20.times do
              mutex.synchronize do
                value = counter
                # A round trip through the echo fiber: the reply is not
                # there yet, so the fiber suspends holding the mutex.
                echo_in.write("x")
                from_echo.readpartial(1)
                counter = value + 1
              end
            end
            echo_in.close if (workers -= 1).zero?
          end
        end
        Fiber.schedule do
          while (byte = to_echo.read(1))
            echo_out.write(byte)
          end
        end
      end
    end
    assert_equal 200, counter
    assert_hooks(:block, :unblock, :io_read, :io_write, :io_wait, recorder: recorder)
  end

  def test_condition_variable_signal_and_broadcast
    mutex = Mutex.new
    cond = ConditionVariable.new
    woken = []
    woken_after_signal = nil
    recorder = within_timeout do
      with_scheduler do
        done = Thread::Queue.new
        5.times do |i|
          Fiber.schedule do
            mutex.synchronize { cond.wait(mutex) }
            woken << i
            done << i
          end
        end
        # Each waiter started at once and is now waiting on the condition.
        Fiber.schedule do
          mutex.synchronize { cond.signal }
          done.pop
          woken_after_signal = woken.dup
          mutex.synchronize { cond.broadcast }
          4.times { done.pop }
        end
      end
    end
    assert_equal [0], woken_after_signal
    assert_equal [0, 1, 2, 3, 4], woken.sort
    assert_hooks(:block, :unblock, recorder: recorder)
  end

  def test_thread_join_from_fiber
    r, w = io_pipe
    thread = Thread.new { r.read(5) } # blocks outside the scheduler
    value = nil
    unblocking_threads = []
    recorder = within_timeout do
      with_scheduler(scheduler_noting_unblocks(unblocking_threads)) do
        Fiber.schedule { value = thread.join.value }
        # The joining fiber waits; feeding the thread lets it finish.
        Fiber.schedule { w.write("hello") }
      end
    end
    assert_equal "hello", value
    assert_hooks(:block, :unblock, recorder: recorder)
    assert_equal [thread], recorder.args(:block).map(&:first).select { |b| b.is_a?(Thread) }
    assert_equal [thread], unblocking_threads
  ensure
    thread&.join(1)
  end

  def test_queue_pop_timeout
    queue = Thread::Queue.new
    value = :unset
    elapsed = nil
    recorder = within_timeout do
      with_scheduler do
        Fiber.schedule do
          t0 = Process.clock_gettime(Process::CLOCK_MONOTONIC)
          value = queue.pop(timeout: 0.05)
          elapsed = Process.clock_gettime(Process::CLOCK_MONOTONIC) - t0
        end
      end
    end
    assert_nil value
    assert_operator elapsed, :>=, 0.04
    assert_hooks(:block, recorder: recorder)
    refute_hooks(:unblock, recorder: recorder)
    assert_equal [0.05], recorder.args(:block).map(&:last)
  end

  def test_queue_fed_by_another_thread
    queue = Thread::Queue.new
    r, w = io_pipe
    received = []
    # The thread pushes only once the fiber waits on the queue.
    thread = Thread.new do
      r.read(1)
      5.times { |i| queue << i }
      queue.close
    end
    unblocking_threads = []
    recorder = within_timeout do
      with_scheduler(scheduler_noting_unblocks(unblocking_threads)) do
        Fiber.schedule do
          while (item = queue.pop)
            received << item
          end
        end
        Fiber.schedule { w.write("!") }
      end
    end
    assert_equal [0, 1, 2, 3, 4], received
    assert_hooks(:block, :unblock, recorder: recorder)
    assert_equal [thread], unblocking_threads.uniq
  ensure
    thread&.join(1)
  end

  private

  # Runs the block (which sets up and closes a scheduler) with a time limit;
  # returns the block's value. Unlike Timeout.timeout, it raises again and
  # again: each raise lands in whichever fiber runs at the time, and only
  # one that reaches the scheduler's run loop ends a hung run.
  def within_timeout(seconds = TEST_TIMEOUT)
    test_thread = Thread.current
    watchdog = Thread.new do
      sleep seconds
      loop do
        test_thread.raise(Timeout::Error, "test still running after #{seconds} s")
        sleep 0.1
      end
    end
    yield
  ensure
    watchdog&.kill&.join
  end

  # A scheduler that adds the thread of each #unblock call to +threads+.
  def scheduler_noting_unblocks(threads)
    scheduler = UM::FiberScheduler.new(@machine)
    noting = Module.new do
      define_method(:unblock) do |blocker, fiber|
        threads << Thread.current
        super(blocker, fiber)
      end
    end
    scheduler.singleton_class.prepend(noting)
    scheduler
  end

  # Producer fibers push [producer, n] for n in 0...items; consumer fibers
  # pop until a sentinel (finish: :sentinel) or until the queue is closed and
  # empty (finish: :close). An optional block runs before each push.
  # Returns the recorder and each consumer's items.
  def produce_and_consume(queue, producers:, items:, consumers:, finish:, &before_push)
    consumed = Array.new(consumers) { [] }
    recorder = with_scheduler do
      consumers.times do |c|
        Fiber.schedule do
          while (item = queue.pop)
            break if item == :done

            consumed[c] << item
          end
        end
      end
      finished = Thread::Queue.new
      producers.times do |p|
        Fiber.schedule do
          items.times do |n|
            before_push&.call
            queue.push([p, n])
            sleep 0 if n % 50 == 49 # let the others in, even with an unbounded queue
          end
        ensure
          finished << p
        end
      end
      Fiber.schedule do
        producers.times { finished.pop }
        finish == :close ? queue.close : consumers.times { queue.push(:done) }
      end
    end
    [recorder, consumed]
  end

  def assert_all_consumed_once(consumed, producers, items)
    all = consumed.flatten(1)
    expected = producers.times.flat_map { |p| items.times.map { |n| [p, n] } }
    assert_equal expected.size, all.size, "items consumed"
    assert_equal expected, all.sort
    # Each producer's items reach each consumer in the order pushed.
    consumed.each do |items_of_consumer|
      items_of_consumer.group_by(&:first).each_value { |list| assert_equal list.sort, list }
    end
  end

  # A few requests on one keep-alive connection; returns [status, body] of
  # each. (Net::HTTP reconnects when a connection was idle longer than its
  # keep_alive_timeout, 2 s by default: too short under GC.stress.)
  def http_session(host, port, id)
    Net::HTTP.start(host, port, keep_alive_timeout: 60) do |http|
      [
        http.get("/hello/#{id}/0"),
        http.get("/hello/#{id}/1"),
        http.post("/echo", "payload #{id} " * 100, "Content-Type" => "text/plain"),
        http.get("/missing"),
        http.get("/hello/#{id}/2")
      ].map { |res| [res.code, res.body] }
    end
  end

  # A minimal HTTP/1.1 server, run in scheduled fibers: a fiber accepts, and a
  # fiber serves each connection, keeping it open until the client closes it
  # or asks for "Connection: close".
  #   GET /hello/...  200, "GET /hello/..."
  #   POST /echo      201, "POST /echo <body>"
  #   anything else   404
  class TinyHTTPServer
    attr_reader :port, :requests_per_connection

    def initialize
      @server = TCPServer.new("127.0.0.1", 0)
      @port = @server.addr[1]
      @requests_per_connection = []
      @stopping = false
    end

    def start
      Fiber.schedule do
        loop do
          conn = @server.accept
          if @stopping
            conn.close
            break
          end
          index = @requests_per_connection.size
          @requests_per_connection << 0
          Fiber.schedule { serve(conn, index) }
        end
      ensure
        @server.close
      end
    end

    # Ends the accept loop with a last connection that wakes it up.
    def stop
      @stopping = true
      TCPSocket.new("127.0.0.1", @port).close
    end

    private

    def serve(conn, index)
      while (request_line = conn.gets("\r\n"))
        method, path, = request_line.split(" ", 3)
        headers = read_headers(conn)
        length = headers["content-length"].to_i
        body = length.positive? ? conn.read(length) : ""
        @requests_per_connection[index] += 1
        status, text = response_for(method, path, body)
        close = headers["connection"]&.downcase == "close"
        conn.write("HTTP/1.1 #{status}\r\nContent-Type: text/plain\r\n" \
                   "Content-Length: #{text.bytesize}\r\n" \
                   "#{close ? "Connection: close\r\n" : ""}\r\n#{text}")
        break if close
      end
    ensure
      conn.close
    end

    def read_headers(conn)
      headers = {}
      while (line = conn.gets("\r\n")) && line != "\r\n"
        name, value = line.split(":", 2)
        headers[name.strip.downcase] = value.strip
      end
      headers
    end

    def response_for(method, path, body)
      if method == "GET" && path.start_with?("/hello/")
        ["200 OK", "GET #{path}"]
      elsif method == "POST" && path == "/echo"
        ["201 Created", "POST #{path} #{body}"]
      else
        ["404 Not Found", "not found: #{path}"]
      end
    end
  end
end
