# frozen_string_literal: true

require_relative "../site"

module Site
  # bin/site build | bin/site serve [PORT]
  module CLI
    USAGE = "usage: bin/site build | bin/site serve [PORT]"

    def self.start(argv)
      command, port, *rest = argv
      return usage unless rest.empty?

      case command
      when "build" then port ? usage : build && 0
      when "serve" then build && serve(Integer(port || "8000", 10))
      else usage
      end
    rescue BuildError => e
      warn "site: #{e.message}"
      1
    rescue ArgumentError
      usage
    end

    def self.build
      builder = Builder.new.build
      documented, total = builder.api.coverage
      puts "site: #{builder.pages.size} pages, API #{documented}/#{total} public methods documented with an example, in #{OUT.delete_prefix("#{PROJECT}/")}"
      true
    end

    # The built site, served by Uma on 127.0.0.1 until Ctrl-C.
    def self.serve(port)
      require "uma"
      require_relative "static_app"
      config = Uma::Config.new(host: "127.0.0.1", port: port)
      listeners = Uma::Listener.open_all(config)
      puts "site: serving on #{listeners.map(&:url).join(', ')}"
      $stdout.flush
      Uma::Server.new(StaticApp.new(OUT), config, listeners).trap_signals.run
      0
    rescue Uma::Error => e
      warn "site: #{e.message}"
      1
    end

    def self.usage
      warn USAGE
      2
    end
  end
end

exit Site::CLI.start(ARGV) if $PROGRAM_NAME == __FILE__
