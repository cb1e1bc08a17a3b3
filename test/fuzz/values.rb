# frozen_string_literal: true

module UMFuzz
  # Random arguments for the fuzz: mostly plausible values of each kind,
  # sometimes hostile ones (wrong types, negative or huge numbers, closed
  # fds, frozen strings, read-only, freed or sliced IO::Buffers).
  class Values
    # An fd number far above any the case opens: always closed (EBADF).
    CLOSED_FD = 987

    HUGE = [2**31, 2**32 + 1, 2**63 - 1, 2**63, 2**64, -2**31, -2**63, -2**64].freeze
    WRONG = [nil, "7", :sym, 1.5, [], {}, Object.new.freeze, true].freeze

    def initialize(rng, world)
      @rng = rng
      @world = world
    end

    attr_reader :rng

    # A value of +kind+: a plausible one with probability +good+.
    def pick(kind, good: 0.8)
      plausible = @rng.rand < good
      send(plausible ? :"good_#{kind}" : :"bad_#{kind}")
    end

    def one_of(*choices) = choices.flatten(1)[@rng.rand(choices.flatten(1).size)]

    def chance(probability) = @rng.rand < probability

    def good_fd = one_of(@world.fds.empty? ? [CLOSED_FD] : @world.fds)
    def bad_fd = one_of(CLOSED_FD, -1, -100, *HUGE, *WRONG, $stderr)

    def good_buf = one_of(+"", String.new(capacity: 64), +"prefix:", IO::Buffer.new(64), IO::Buffer.new(1), @world.shared_buffer)

    def bad_buf
      case @rng.rand(7)
      when 0 then "frozen".freeze
      when 1 then IO::Buffer.for("read-only".freeze)
      when 2 then IO::Buffer.new(64).slice(@rng.rand(8), 8 + @rng.rand(8))
      when 3 then IO::Buffer.new(16).tap(&:free)
      when 4 then @world.shared_buffer.slice(0, @rng.rand(4))
      when 5 then IO::Buffer.map(File.open(@world.map_path, "r+"), 16, 0)
      else one_of(WRONG)
      end
    rescue StandardError
      +""
    end

    def good_data
      one_of("hello\n", "a" * (1 + @rng.rand(5000)), "line one\r\nline two\n", IO::Buffer.for("from buffer".dup),
             Random.new(@rng.rand(1000)).bytes(@rng.rand(100)), "*1\r\n$4\r\nPING\r\n")
    end

    def bad_data
      case @rng.rand(5)
      when 0 then IO::Buffer.new(8).tap(&:free)
      when 1 then IO::Buffer.for("frozen data").slice(2, 3)
      when 2 then "".freeze
      else one_of(WRONG, 42)
      end
    end

    def good_len = one_of(nil, 0, 1, 3, 10, 100, 4096, 65_536, -1)
    def bad_len = one_of(-2, -5000, *HUGE, 1.5, "4", Float::NAN, Float::INFINITY, :len)

    def good_offset = one_of(0, 0, -1, 1, 5)
    def bad_offset = one_of(-2, -1000, *HUGE, "x", nil, 2.5)

    def good_time = one_of(0, 0.0005, 0.001, 0.005, 0.02, Rational(1, 500))
    def bad_time = one_of(-1, -0.0001, Float::NAN, Float::INFINITY, -Float::INFINITY, 2**64, "0.1", :now, Object.new)

    def good_int = one_of(0, 0, 1, 2, 16)
    def bad_int = one_of(-1, 0x7fffffff, *HUGE, nil, "0", 1.5)

    def good_mask = one_of(UM::POLLIN, UM::POLLOUT, UM::POLLIN | UM::POLLOUT, UM::POLLIN | UM::POLLPRI)
    def bad_mask = one_of(0, -1, 0xffff, *HUGE, nil, :in)

    def good_events = one_of(IO::READABLE, IO::WRITABLE, IO::READABLE | IO::WRITABLE, IO::PRIORITY)
    def bad_events = one_of(0, -1, 2**40, nil, "r")

    def good_fiber = one_of(@world.fibers.empty? ? [Fiber.current] : @world.fibers)
    def bad_fiber = one_of(Fiber.current, Fiber.new { 1 }, nil, Object.new, @world.machine, 3)

    def good_queue = @world.queue
    def bad_queue = one_of(@world.mutex, nil, [], UM::Queue.allocate, 3)

    def good_mutex = @world.mutex
    def bad_mutex = one_of(@world.queue, nil, UM::Mutex.allocate, :m)

    def good_value = one_of(nil, 1, :ok, "value", [1, 2])

    def bad_value
      one_of(RuntimeError.new("fuzz raise"), UM::Terminate.new, Timeout::Error.new, FuzzError, IOError.new("x"),
             StopIteration.new, Object.new)
    end

    def good_path = one_of(@world.file_path, File.join(@world.dir, "new-#{@rng.rand(5)}"), @world.dir)
    def bad_path = one_of("", "nul\0byte", "/nonexistent/dir/file", "x" * 5000, nil, 42, :path)

    def good_flags = one_of(UM::O_RDONLY, UM::O_RDWR, UM::O_CREAT | UM::O_WRONLY, UM::O_RDWR | UM::O_APPEND)
    def bad_flags = one_of(-1, 0x7fffffff, *HUGE, nil, "r")

    def good_host = one_of("127.0.0.1", "127.0.0.1", "::1", Socket.sockaddr_in(@world.port, "127.0.0.1"))
    def bad_host = one_of("not-an-ip", "", "999.1.1.1", "localhost", "\0", nil, 42, "xx".b, "x" * 200)

    def good_port = one_of(@world.port, @world.port, 0, 1)
    def bad_port = one_of(-1, 65_536, 70_000, *HUGE, "80", nil)

    # An IO for the scheduler hooks: a wrapper over a live fd (not closing
    # it when collected), sometimes a closed one, an Integer or junk.
    def good_io = IO.for_fd(good_fd, autoclose: false)
    def bad_io = one_of(closed_io, 3, nil, Object.new, :io)

    def closed_io
      io = IO.for_fd(IO.sysopen(@world.file_path), autoclose: true)
      io.close
      io
    end

    def good_iobuf = one_of(IO::Buffer.new(64), IO::Buffer.new(4096), IO::Buffer.new(64).slice(8, 16), @world.shared_buffer)

    def bad_iobuf
      case @rng.rand(4)
      when 0 then IO::Buffer.for("read-only".freeze)
      when 1 then IO::Buffer.new(32).tap(&:free)
      when 2 then IO::Buffer.new(0)
      else one_of(+"string", nil, 7)
      end
    end

    def good_exc_class = one_of(FuzzError, Timeout::Error, RuntimeError)
    def bad_exc_class = one_of(nil, 3, Object, UM::Terminate, FuzzError.new, "Timeout")
  end

  # Raised by the fuzz into fibers and as its step timeout.
  class FuzzError < StandardError; end
end
