import SMCore
import Testing

/// Expects every VHD of the repository to pass the engine's check.
func expectChecked(_ repo: VHDRepository, _ context: String = "", sourceLocation: SourceLocation = #_sourceLocation) throws {
    let problems = try Contents.checkProblems(repo)
    #expect(problems.isEmpty, "check \(context): \(problems)", sourceLocation: sourceLocation)
}

/// Expects the volume sizes the container's sizing policy promises (`Contents.sizingProblems`).
func expectSized(_ repo: VHDRepository, leaves: Bool = true, sourceLocation: SourceLocation = #_sourceLocation) throws {
    let problems = try Contents.sizingProblems(repo, leaves: leaves)
    #expect(problems.isEmpty, "sizing: \(problems)", sourceLocation: sourceLocation)
}

/// Expects no stray volume or journal entry.
func expectNoLeftovers(_ repo: VHDRepository, sourceLocation: SourceLocation = #_sourceLocation) throws {
    let left = try Contents.leftovers(repo)
    #expect(left.isEmpty, "left behind: \(left)", sourceLocation: sourceLocation)
}
