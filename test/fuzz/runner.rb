# frozen_string_literal: true

require "fileutils"
require_relative "fuzz_case"

module UMFuzz
  # Runs fuzz cases, each in a child forked from the calling process with a
  # time limit (past it the child is killed with SIGKILL: a hang). A case
  # fails when its child dies of a signal (a crash, an ASan abort), exits
  # non-zero, or hangs. Settings come from the environment:
  #
  #   UM_FUZZ_SEED   seed of the first case (case i uses seed + i); random by default
  #   UM_FUZZ_CASES  number of cases
  #   UM_FUZZ_STEPS  steps per case (default 60)
  #   UM_FUZZ_LIMIT  seconds a case may take (default 10, 30 under ASan)
  #   UM_FUZZ_DIR    where the logs of failed cases are kept (default tmp/fuzz)
  class Runner
    Failure = Struct.new(:seed, :kind, :status, :last_calls, :stderr) do
      def to_s
        <<~TEXT
          seed #{seed}: #{kind} (#{status})
            replay: UM_FUZZ_SEED=#{seed} UM_FUZZ_CASES=1 bin/fuzz
            last calls:
          #{last_calls.map { |l| "    #{l}" }.join("\n")}
            stderr:
          #{stderr.map { |l| "    #{l}" }.join("\n")}
        TEXT
      end
    end

    attr_reader :cases, :failures, :seed

    def initialize(cases:, seed: nil, steps: nil, limit: nil, dir: nil, out: $stdout)
      @cases = cases
      @seed = seed || ENV["UM_FUZZ_SEED"]&.to_i || Random.new_seed % 1_000_000_000
      @steps = steps || Integer(ENV.fetch("UM_FUZZ_STEPS", "60"))
      @limit = limit || Float(ENV.fetch("UM_FUZZ_LIMIT", sanitized? ? "30" : "10"))
      @dir = dir || ENV["UM_FUZZ_DIR"] || File.expand_path("../../tmp/fuzz", __dir__)
      @out = out
      @failures = []
    end

    def crashes = @failures.count { |f| f.kind == :crash }
    def hangs = @failures.count { |f| f.kind == :hang }

    # Runs every case; returns self.
    def run
      FileUtils.mkdir_p(@dir)
      @cases.times do |i|
        failure = run_case(@seed + i)
        next unless failure

        @failures << failure
        @out.puts failure
      end
      @out.puts summary
      self
    end

    def summary
      "fuzz: #{@cases} cases (seeds #{@seed}..#{@seed + @cases - 1}), #{crashes} crashes, #{hangs} hangs"
    end

    private

    def sanitized? = ENV["LD_PRELOAD"].to_s.include?("asan")

    # Runs one case; returns a Failure or nil.
    def run_case(seed)
      log_path = File.join(@dir, "#{seed}.log")
      err_path = File.join(@dir, "#{seed}.stderr")
      $stdout.flush
      $stderr.flush
      pid = fork do
        $stdout.reopen(err_path, "w")
        $stderr.reopen($stdout)
        exit!(Case.new(seed, log_path, @steps).run)
      end
      status, hung = wait_with_limit(pid)
      failure = judge(seed, status, hung, log_path, err_path)
      File.delete(log_path, err_path) unless failure
      failure
    end

    def wait_with_limit(pid)
      deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + @limit
      loop do
        _, status = Process.wait2(pid, Process::WNOHANG)
        return [status, false] if status

        if Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline
          dump_stacks(pid)
          Process.kill(:KILL, pid)
          _, status = Process.wait2(pid)
          return [status, true]
        end
        sleep 0.01
      end
    end

    # The C backtraces of a hung child (with gdb, when it is installed),
    # appended to the child's stderr; UM_FUZZ_GDB=0 turns this off.
    def dump_stacks(pid)
      return if ENV["UM_FUZZ_GDB"] == "0" || !system("command -v gdb >/dev/null 2>&1")

      @stack_file = File.join(@dir, "#{pid}.stacks")
      system("timeout", "30", "gdb", "-p", pid.to_s, "-batch", "-ex", "thread apply all bt 30",
             out: @stack_file, err: File::NULL)
    end

    def judge(seed, status, hung, log_path, err_path)
      kind =
        if hung then :hang
        elsif status.success? then return nil
        else :crash
        end
      Failure.new(seed, kind, describe(status, hung), tail(log_path, 12), report_excerpt(err_path) + stacks)
    end

    # The main thread's frames from the gdb dump of a hung child.
    def stacks
      return [] unless @stack_file && File.exist?(@stack_file)

      lines = File.readlines(@stack_file, chomp: true).grep(/^#\d+ /)
      File.delete(@stack_file)
      @stack_file = nil
      main = lines.slice_before { |line| line.start_with?("#0 ") }.to_a.last || []
      ["(gdb, main thread)"] + main.first(25).map { |line| line.sub(/ \(.{60,}?\) at /, " (...) at ")[0, 200] }
    end

    def describe(status, hung)
      return "killed after #{@limit} s" if hung
      return "signal #{Signal.signame(status.termsig)}" if status.signaled?

      case status.exitstatus
      when Case::UNEXPECTED_EXIT then "exit #{status.exitstatus}: an exception of an unexpected class"
      when Case::TEARDOWN_EXIT then "exit #{status.exitstatus}: fibers survived #terminate"
      else "exit #{status.exitstatus}"
      end
    end

    # The child's stderr from the first sanitizer or VM crash report on (its
    # headline and the top frames), else its last lines.
    def report_excerpt(path)
      lines = tail(path, 10_000)
      start = lines.index { |line| line.match?(/runtime error:|ERROR: AddressSanitizer|\[BUG\]|SUMMARY:/) }
      start ? lines[start, 30] : lines.last(40)
    end

    def tail(path, lines)
      return ["(none)"] unless File.exist?(path)

      File.readlines(path, chomp: true).last(lines)
    end
  end
end
