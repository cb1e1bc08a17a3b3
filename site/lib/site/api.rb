# frozen_string_literal: true

require "yard"

module Site
  # The API reference: YARD reads the doc comments of the C extension (its
  # rb_define_method calls and the comment above each function) and of the
  # Ruby code. Every public method of the covered namespaces must have a doc
  # comment with an @example.
  class API
    SOURCES = ["ext/um/um_class.c", "ext/um/*_class.c", "lib/**/*.rb", "uma/lib/**/*.rb"].freeze
    COVERED = %w[
      UringMachine UringMachine::IO UringMachine::FiberScheduler
      UringMachine::FiberScheduler::BufferedIOv3 UringMachine::FiberScheduler::BufferedIOv4
      UringMachine::AsyncOp UringMachine::Mutex UringMachine::Queue UringMachine::Actor UringMachine::WorkerPool
      Uma Uma::Server Uma::Config Uma::CLI
    ].freeze
    DIR = "api"

    def initialize(root = PROJECT, sources: SOURCES)
      @root = root
      @sources = sources
    end

    # Parses the sources into YARD's registry (once).
    def load
      return self if @loaded

      Dir.chdir(@root) do
        YARD::Registry.clear
        log.level = YARD::Logger::ERROR
        YARD.parse(@sources)
      end
      @loaded = true
      self
    end

    # The public methods of the covered namespaces (their own, not inherited).
    def public_methods
      load
      COVERED.flat_map do |path|
        namespace = YARD::Registry.at(path) or raise BuildError, "#{path} not found in the sources"
        namespace.meths(inherited: false, included: false).select { _1.visibility == :public }
      end
    end

    # Paths of the public methods without a doc comment or without an example.
    def undocumented
      public_methods.select { _1.docstring.blank? || !_1.has_tag?(:example) }.map(&:path)
    end

    def coverage
      methods = public_methods
      [methods.size - undocumented.size, methods.size]
    end

    # The reference's URL of a class, module or method ("UringMachine#read",
    # "UM::IO.resp_encode", "Uma"), nil if there is none.
    def url_for(path)
      load
      object = YARD::Registry.at(path.sub(/\AUM(?=\z|::|#|\.)/, "UringMachine"))
      return nil unless object

      if object.type == :method
        "/#{DIR}/#{object.namespace.path.gsub('::', '/')}.html##{object.name}-#{object.scope}_method"
      else
        "/#{DIR}/#{object.path.gsub('::', '/')}.html"
      end
    end

    # Writes YARD's HTML reference into +out+/api.
    def write(out)
      missing = undocumented
      unless missing.empty?
        raise BuildError, "#{missing.size} public methods lack a doc comment with an @example: #{missing.join(', ')}"
      end

      Dir.chdir(@root) do
        keeping_encodings do
          YARD::CLI::Yardoc.run(
            "--no-save", "--no-stats", "--quiet", "--no-progress",
            "--title", "UringMachine API reference",
            "--readme", "site/api_readme.md",
            "-o", File.join(out, DIR), *@sources
          )
        end
      end
      @loaded = false # Yardoc rebuilt the registry
    end

    private

    # Yardoc sets the process's default encodings to UTF-8 (and leaves them
    # so); in a test process that changes how every later IO converts.
    def keeping_encodings
      external = Encoding.default_external
      internal = Encoding.default_internal
      yield
    ensure
      verbose = $VERBOSE
      $VERBOSE = nil
      Encoding.default_external = external
      Encoding.default_internal = internal
      $VERBOSE = verbose
    end
  end
end
