# frozen_string_literal: true

module UMFuzz
  # The calls a fuzz case picks from. #pick returns [description, callable];
  # the callable performs the call (on the calling fiber). Arguments come
  # from Values, so most calls are plausible and some are hostile.
  class Actions
    # Machine methods and the kinds of their arguments.
    MACHINE_CALLS = {
      read: %i[fd buf len offset offset], write: %i[fd data len offset], writev: %i[fd data data],
      write_async: %i[fd data len], close_async: %i[fd], fsync: %i[fd], splice: %i[fd fd len], tee: %i[fd fd len],
      poll: %i[fd mask], send: %i[fd data len int], recv: %i[fd buf len int], sendv: %i[fd data data],
      shutdown: %i[fd how], shutdown_async: %i[fd how], accept: %i[fd], listen: %i[fd int],
      connect: %i[fd host port], bind: %i[fd host port], getsockopt: %i[fd level opt],
      setsockopt: %i[fd level opt sockval], send_fd: %i[fd fd], recv_fd: %i[fd], sleep: %i[time],
      push: %i[queue value], unshift: %i[queue value], shift: %i[queue], pop: %i[queue],
      schedule: %i[fiber value], open: %i[path flags int], statx: %i[dirfd path int int],
      socket: %i[domain socktype int int], tcp_connect: %i[host port], prep_timeout: %i[time],
      ssl_read: %i[ssl buf len], ssl_write: %i[ssl data len], waitid: %i[idtype pid wflags],
      waitid_status: %i[idtype pid wflags], select: %i[fdlist fdlist fdlist time]
    }.freeze

    # Calls that never wait: safe on the second machine of the thread.
    OTHER_MACHINE_CALLS = {
      schedule: %i[fiber value], push: %i[queue value], unshift: %i[queue value], metrics: [], size: [],
      wakeup: [], submit: []
    }.freeze

    # UM::IO methods.
    IO_CALLS = {
      read_line: %i[limit], read: %i[iolen], read_to_delim: %i[delim limit], skip: %i[iolen], eof?: [],
      consumed: [], pending: [], clear: [], write: %i[data data], target: []
    }.freeze

    # Fiber scheduler hooks called directly.
    HOOK_CALLS = {
      io_read: %i[io iobuf len offset], io_write: %i[io iobuf len offset], io_pread: %i[io iobuf offset len offset],
      io_pwrite: %i[io iobuf offset len offset], io_wait: %i[io events time], kernel_sleep: %i[time],
      block: %i[value time], unblock: %i[value fiber], io_select: %i[iolist iolist iolist time], io_close: %i[fd],
      process_wait: %i[pid pidflags], fiber_interrupt: %i[fiber value], yield: []
    }.freeze

    # Calls that return a new fd, which joins the world.
    FD_RETURNING = %i[accept recv_fd open socket tcp_connect].freeze

    def initialize(world, values, log)
      @world = world
      @v = values
      @log = log
      @machine = world.machine
    end

    # Weighted groups of actions.
    GROUPS = [
      [30, :machine_call], [6, :nested_call], [8, :fiber_op], [6, :io_op], [8, :hook_op], [3, :multishot_op],
      [3, :async_op], [3, :gc_op], [2, :world_op], [2, :other_machine_call], [2, :thread_op]
    ].freeze
    TOTAL_WEIGHT = GROUPS.sum(&:first)

    # [description, callable] of a random action.
    def pick
      n = @v.rng.rand(TOTAL_WEIGHT)
      GROUPS.each do |weight, group|
        return send(group) if n < weight

        n -= weight
      end
    end

    # Arguments of the given kinds, sometimes one too few or one too many.
    def args_for(kinds)
      args = kinds.map { |kind| arg(kind) }
      case @v.rng.rand(20)
      when 0 then args.pop
      when 1 then args << arg(:value)
      end
      args
    end

    def arg(kind)
      respond_to?(:"arg_#{kind}", true) ? send(:"arg_#{kind}") : @v.pick(kind)
    end

    def call(receiver, name, args, label = receiver_label(receiver), &block)
      desc = "#{label}.#{name}(#{args.map { |a| show(a) }.join(', ')})#{block ? ' { ... }' : ''}"
      [desc, lambda {
        result = receiver.public_send(name, *args, &block)
        adopt_fd(name, result)
        result
      }]
    end

    def machine_call
      name, kinds = MACHINE_CALLS.to_a[@v.rng.rand(MACHINE_CALLS.size)]
      return call(@machine, :close, [arg(:fd)]) if @v.chance(0.03)

      desc, action = call(@machine, name, args_for(kinds))
      name == :prep_timeout ? [desc, -> { @world.ops << action.call }] : [desc, action]
    end

    # A call inside a timeout, a mutex or an ensure-less block of another call.
    def nested_call
      inner_desc, inner = machine_call
      case @v.rng.rand(4)
      when 0
        args = [arg(:time), @v.chance(0.8) ? @v.one_of(FuzzError, FuzzError.new("t"), UM::Terminate) : arg(:value)]
        call(@machine, :timeout, args) { inner.call }.then { |d, a| ["#{d} => #{inner_desc}", a] }
      when 1
        call(@machine, :synchronize, [arg(:mutex)]) { inner.call }.then { |d, a| ["#{d} => #{inner_desc}", a] }
      when 2
        call(@world.scheduler, :timeout_after, [arg(:time), @v.pick(:exc_class), "msg"]) { inner.call }
          .then { |d, a| ["#{d} => #{inner_desc}", a] }
      else
        desc, action = call(@machine, :spin, [arg(:value)]) { Actions.guarded(@world) { inner.call } }
        ["#{desc} => #{inner_desc}", -> { @world.track_fiber(action.call) }]
      end
    end

    # Fibers in every state, and the calls that move them between states.
    def fiber_op
      fibers = @world.fibers.sample(1 + @v.rng.rand(3), random: @v.rng)
      fibers << @v.pick(:fiber, good: 0.3) if @v.chance(0.2)
      case @v.rng.rand(9)
      when 0 then call(@machine, :terminate, fibers)
      when 1 then call(@machine, :join, fibers)
      when 2 then call(@machine, :await, fibers)
      when 3 then call(@machine, :schedule, [fibers.first || Fiber.current, arg(:value)])
      when 4 then ["fiber.raise(FuzzError)", -> { fibers.first&.raise(FuzzError, "via Fiber#raise") }]
      when 5 then ["fiber state", -> { fibers.map { |f| [f.done?, f.result, f.alive?, f.mailbox.count] } }]
      when 6 then call(@machine, :snooze, [])
      when 7 then call(@machine, :yield, [])
      else call(@machine, :switch, [])
      end
    end

    def io_op
      return new_io if @world.ios.empty? || @v.chance(0.15)

      io = @world.ios.sample(random: @v.rng)
      if @v.chance(0.15)
        n = 1 + @v.rng.rand(3)
        return ["io.read_each { break after #{n} }", lambda {
          count = 0
          io.read_each { |_buf| break if (count += 1) >= n }
        }]
      end
      name, kinds = IO_CALLS.to_a[@v.rng.rand(IO_CALLS.size)]
      call(io, name, args_for(kinds), "io")
    end

    def new_io
      target = @v.chance(0.2) && !@world.ssl_pairs.empty? ? @world.ssl_sockets.sample(random: @v.rng) : arg(:fd)
      mode = @v.one_of(nil, nil, :fd, :socket, :ssl, :bogus, "fd")
      desc, action = call(UM::IO, :new, [@machine, target, mode].compact, "UM::IO")
      [desc, -> { @world.ios << action.call }]
    end

    def hook_op
      name, kinds = HOOK_CALLS.to_a[@v.rng.rand(HOOK_CALLS.size)]
      if @v.chance(0.08)
        inner_desc, inner = machine_call
        return call(@world.scheduler, :fiber, []) { inner.call }.then do |d, a|
          ["#{d} => #{inner_desc}", -> { @world.track_fiber(a.call) }]
        end
      end
      return call(@world.scheduler, :blocking_operation_wait, [-> { sleep(0.001) }]) if @v.chance(0.04)
      return call(@world.scheduler, :run, []) if @v.chance(0.02)

      call(@world.scheduler, name, args_for(kinds), "scheduler")
    end

    def multishot_op
      n = 1 + @v.rng.rand(3)
      fd = arg(:fd)
      case @v.rng.rand(4)
      when 0
        ["machine.read_each(#{show(fd)}) { break after #{n} }", lambda {
          count = 0
          @machine.read_each(fd) { |_s| break if (count += 1) >= n }
        }]
      when 1
        ["machine.recv_each(#{show(fd)}, 0) { raise after #{n} }", lambda {
          count = 0
          @machine.recv_each(fd, 0) { |_s| raise FuzzError, "enough" if (count += 1) >= n }
        }]
      when 2
        t = arg(:time)
        ["machine.periodically(#{show(t)}) { break after #{n} }", lambda {
          count = 0
          @machine.periodically(t) { break if (count += 1) >= n }
        }]
      else
        ["machine.accept_each(#{show(fd)}) { break after 1 }", lambda {
          @machine.accept_each(fd) do |conn|
            @world.fds << conn if conn.is_a?(Integer)
            break
          end
        }]
      end
    end

    def async_op
      op = @world.ops.sample(random: @v.rng)
      return call(@machine, :prep_timeout, [arg(:time)]).then { |d, a| [d, -> { @world.ops << a.call }] } unless op

      name = @v.one_of(:await, :cancel, :done?, :result, :cancelled?, :kind, :join)
      call(op, name, [], "op")
    end

    # The collector at random points: between steps, and while a call of
    # another fiber is pending (the fiber spun here waits in it).
    def gc_op
      case @v.rng.rand(3)
      when 0 then ["GC.start", -> { GC.start }]
      when 1 then ["GC.compact", -> { GC.compact }]
      else
        inner_desc, inner = machine_call
        ["spin { #{inner_desc} }, then GC.compact", lambda do
          @world.track_fiber(@machine.spin { Actions.guarded(@world) { inner.call } })
          @machine.snooze
          GC.compact
        end]
      end
    end

    def world_op
      return ["(enough fds)", -> {}] if @world.fds.size > 60

      case @v.rng.rand(5)
      when 0 then ["add pipe", -> { @world.add_pipe }]
      when 1 then ["add socketpair", -> { @world.add_socketpair }]
      when 2 then ["add tcp pair", -> { @world.add_tcp_pair }]
      when 3 then ["add ssl pair", -> { @world.add_ssl_pair }]
      else ["add file", -> { @world.add_file }]
      end
    end

    def other_machine_call
      name, kinds = OTHER_MACHINE_CALLS.to_a[@v.rng.rand(OTHER_MACHINE_CALLS.size)]
      return call(@world.other_machine, :terminate, [arg(:fiber)], "other") if @v.chance(0.1)

      call(@world.other_machine, name, args_for(kinds), "other")
    end

    # Another thread: the machine refuses it except for the thread-safe
    # calls (wakeup, schedule, queue and mutex operations).
    def thread_op
      inner_desc, inner =
        case @v.rng.rand(4)
        when 0 then machine_call
        when 1 then call(@machine, :wakeup, [])
        when 2 then call(@machine, :schedule, [arg(:fiber), arg(:value)])
        else call(Thread.current.machine, :push, [@world.queue, arg(:value)], "thread_machine")
        end
      ["in a thread: #{inner_desc}", lambda {
        thread = Thread.new do
          inner.call
        rescue StandardError, UM::Terminate
          nil
        end
        thread.join(0.5) || thread.kill
      }]
    end

    # Runs the body of a fiber spun by the fuzz: the expected exceptions end
    # it quietly, any other is recorded as a failure of the case.
    def self.guarded(world)
      yield
    rescue StandardError, UM::Terminate
      nil
    rescue Exception => e # rubocop:disable Lint/RescueException
      world.unexpected << e
      nil
    end

    # Argument kinds built here rather than in Values.
    def arg_how = @v.one_of(0, 1, 2, 2, -1, 5, nil)
    def arg_level = @v.one_of(UM::SOL_SOCKET, UM::SOL_SOCKET, UM::IPPROTO_TCP, -1, 2**40)
    def arg_opt = @v.one_of(UM::SO_REUSEADDR, UM::SO_RCVBUF, UM::SO_SNDBUF, UM::TCP_NODELAY, UM::SO_ERROR, 9999)
    def arg_sockval = @v.one_of(true, false, 1, 0, 65_536, -1, 2**40, nil, "x")
    def arg_dirfd = @v.chance(0.8) ? UM::AT_FDCWD : arg(:fd)
    def arg_domain = @v.one_of(UM::AF_INET, UM::AF_INET6, UM::AF_UNIX, -1, 12_345)
    def arg_socktype = @v.one_of(UM::SOCK_STREAM, UM::SOCK_DGRAM, 0, -1)
    def arg_idtype = @v.one_of(UM::P_PID, UM::P_PID, UM::P_ALL, UM::P_PIDFD, -1, 99)
    def arg_wflags = @v.one_of(UM::WEXITED, UM::WEXITED, UM::WEXITED | UM::WNOHANG, 0, -1)
    def arg_pidflags = @v.one_of(0, 0, Process::WNOHANG, Process::WUNTRACED, -1)
    def arg_limit = @v.one_of(0, 0, 1, 5, 100, -1, 2**40, nil, "x")
    def arg_iolen = @v.one_of(0, 1, 5, 20, 100, -1, -50, 2**40, -2**63, nil, "3")
    def arg_delim = @v.one_of("\n", "\r\n", ":", "", "long delimiter", nil, 10)
    def arg_fdlist = Array.new(@v.rng.rand(3)) { arg(:fd) }
    def arg_iolist = Array.new(@v.rng.rand(3)) { arg(:io) }

    def arg_ssl
      return @v.one_of(nil, 3, $stderr) if @world.ssl_pairs.empty? || @v.chance(0.15)

      @world.ssl_sockets.sample(random: @v.rng)
    end

    # A child process to wait for (a short-lived one), or a bad pid.
    def arg_pid
      return @v.one_of(-1, 0, 1, 2**31, -2**31, nil, Process.pid) if @v.chance(0.25)

      Process.spawn("sleep", @v.one_of("0", "0.001", "0.01", "0.05"))
    end

    private

    def adopt_fd(name, result)
      @world.fds << result if FD_RETURNING.include?(name) && result.is_a?(Integer) && result >= 0
    end

    def receiver_label(receiver) = receiver.equal?(@machine) ? "machine" : receiver.class.name

    def show(value)
      text =
        case value
        when IO::Buffer then "IO::Buffer(#{value.size}#{value.readonly? ? ',ro' : ''}#{value.null? ? ',null' : ''})"
        when String then value.size > 30 ? "#{value[0, 20].inspect}...(#{value.bytesize}b#{value.frozen? ? ',frozen' : ''})" : "#{value.inspect}#{value.frozen? ? '.freeze' : ''}"
        when Fiber then "fiber##{value.object_id}"
        when ::IO then "IO(#{value.closed? ? 'closed' : value.fileno})"
        else value.inspect
        end
      text.size > 80 ? "#{text[0, 77]}..." : text
    rescue StandardError => e
      "<#{value.class}: #{e.class}>"
    end
  end
end
