# frozen_string_literal: true

module Uma
  # Forked workers sharing the listeners, the app loaded once before the
  # forks. A worker that dies is replaced; TERM, INT and QUIT stop every
  # worker gracefully and exit 0 once they are gone.
  class Cluster
    def initialize(app, config, listeners)
      @app = app
      @config = config
      @listeners = listeners
      @workers = {} # pid => index
      @stopping = false
    end

    # Forks the workers and replaces any that dies, until a stop signal and
    # the workers' exit.
    def run
      Server::STOP_SIGNALS.each { |sig| trap(sig) { stop } }
      @config.workers.times { |i| spawn(i) }
      until @workers.empty?
        pid, status = Process.wait2(-1)
        index = @workers.delete(pid)
        next unless index

        unless @stopping
          warn "uma: worker #{index} (pid #{pid}) exited (#{status.inspect}), starting a new one"
          spawn(index)
        end
      end
    rescue Errno::ECHILD
      nil
    end

    private

    def stop
      @stopping = true
      @workers.each_key do |pid|
        Process.kill(:TERM, pid)
      rescue Errno::ESRCH
        nil
      end
    end

    def spawn(index)
      pid = fork do
        Server.new(@app, @config, @listeners).trap_signals.run
        exit!(0)
      end
      @workers[pid] = index
    end
  end
end
